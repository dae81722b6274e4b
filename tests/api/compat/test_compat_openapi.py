"""Real answers of every /sdapi/v1 and /v1 route, from a real server, validate against the schema
that /api/v1/openapi.json gives for that route and status (errors in each family's own shape)."""

from __future__ import annotations

import base64
import concurrent.futures
from typing import Any

import pytest
import requests

from compat_helpers import A1111_FAST, compat_server, png_bytes, wait_until
from helpers import test_image
from openapi_helpers import SchemaChecker
from server_helpers import Server

pytestmark = pytest.mark.slow

IMAGE = base64.b64encode(png_bytes(test_image(32))).decode()


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    server = compat_server(models, tmp_path_factory.mktemp("compat-schema"))
    yield server
    server.stop()


def test_every_compat_route_answers_as_documented(server: Server) -> None:
    checker = SchemaChecker(server.get("/api/v1/openapi.json").json())
    documented = [path for path in checker.document["paths"] if path.startswith(("/sdapi/", "/v1/"))]
    called: set[str] = set()

    def call(method: str, path: str, documented_path: str | None = None, **kwargs: Any) -> requests.Response:
        called.add(documented_path or path)
        response = requests.request(method, server.url(path), timeout=300, **kwargs)
        assert response.status_code < 500, (path, response.text)
        return checker.check(response, documented_path or path, method.lower())

    for path in (
        "options",
        "cmd-flags",
        "sd-models",
        "sd-vae",
        "samplers",
        "schedulers",
        "upscalers",
        "latent-upscale-modes",
        "loras",
        "embeddings",
        "prompt-styles",
        "memory",
        "progress",
    ):
        assert call("GET", f"/sdapi/v1/{path}").status_code == 200
    for path in ("refresh-checkpoints", "refresh-loras", "refresh-vae", "interrupt", "skip"):
        assert call("POST", f"/sdapi/v1/{path}").status_code == 200
    assert call("POST", "/sdapi/v1/options", json={"samples_format": "png"}).status_code == 200
    assert call("POST", "/sdapi/v1/options", json={"sd_model_checkpoint": "nope"}).status_code == 404
    assert call("POST", "/sdapi/v1/txt2img", json=A1111_FAST).status_code == 200
    assert call("POST", "/sdapi/v1/txt2img", json={"steps": 0}).status_code == 422
    assert call("POST", "/sdapi/v1/img2img", json={**A1111_FAST, "init_images": [IMAGE]}).status_code == 200
    assert call("POST", "/sdapi/v1/img2img", json=A1111_FAST).status_code == 422
    assert call("POST", "/sdapi/v1/extra-single-image", json={"image": IMAGE, "upscaler_1": "Nearest"}).ok
    assert call("POST", "/sdapi/v1/png-info", json={"image": IMAGE}).status_code == 200
    assert call("POST", "/sdapi/v1/png-info", json={}).status_code == 422
    assert call("POST", "/sdapi/v1/unload-checkpoint").status_code == 200
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert call("POST", "/sdapi/v1/reload-checkpoint").status_code == 200
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(server.post, "/sdapi/v1/txt2img", json={**A1111_FAST, "steps": 30})
        wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["sampling_step"] >= 1)
        assert call("GET", "/sdapi/v1/progress").json()["state"]["job_count"] == 1
        call("POST", "/sdapi/v1/interrupt")
        assert running.result(timeout=300).status_code == 200

    assert call("GET", "/v1/models").status_code == 200
    assert call("GET", "/v1/models/sd1", "/v1/models/{model_id}").status_code == 200
    assert call("GET", "/v1/models/nope", "/v1/models/{model_id}").status_code == 404
    fast = {"prompt": "x", "size": "64x64", "steps": 1}
    assert call("POST", "/v1/images/generations", json=fast).status_code == 200
    assert call("POST", "/v1/images/generations", json={**fast, "response_format": "url"}).status_code == 200
    assert call("POST", "/v1/images/generations", json={"prompt": ""}).status_code == 400
    assert (
        call(
            "POST",
            "/v1/images/edits",
            data={"prompt": "x", "steps": "1"},
            files={"image": ("i.png", png_bytes(test_image(64)), "image/png")},
        ).status_code
        == 200
    )
    assert call("POST", "/v1/images/edits", json={"prompt": "x"}).status_code == 400
    assert sorted(called) == sorted(documented)  # every documented compat route was called
