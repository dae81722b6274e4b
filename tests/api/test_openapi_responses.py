"""Real answers of every /api/v1 route, from a real server, validate against the schema that
the server's own /api/v1/openapi.json gives for that route and status."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import test_image
from openapi_helpers import SchemaChecker
from server_helpers import FAST, Server, link_models, png_base64, sse_events

pytestmark = pytest.mark.slow

ADMIN = ("schema-admin", "schema-admin-secret-1")


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("schema")
    models_dir = link_models(models, root / "models")
    (models_dir / "presets").mkdir()
    (models_dir / "presets" / "fast.yaml").write_text("steps: 1\nwidth: 64\nheight: 64\nsampler: euler\n")
    (models_dir / "prompts").mkdir()
    (models_dir / "prompts" / "photo.txt").write_text("a photo of {prompt}")
    server = Server(root, models_dir, "--model", "sd1", "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest"
    result = subprocess.run(
        [exe, "users", "add", ADMIN[0], "--password-stdin", "--role", "admin", "--data-dir", str(server.data_dir)],
        input=ADMIN[1] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def checker(server: Server) -> SchemaChecker:
    response = server.get("/api/v1/openapi.json")
    checker = SchemaChecker(response.json())
    checker.check(response, "/api/v1/openapi.json", "get")
    return checker


def _login(server: Server) -> dict[str, Any]:
    response = server.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 200, response.text
    return response.json()


def test_every_api_v1_route_answers_as_documented(server: Server, checker: SchemaChecker) -> None:
    tokens = _login(server)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}

    def call(method: str, path: str, documented: str, **kwargs: Any) -> requests.Response:
        response = requests.request(
            method, server.url(path), headers={**auth, **kwargs.pop("headers", {})}, timeout=300, **kwargs
        )
        return checker.check(response, documented, method.lower())

    # authentication
    login = checker.check(
        server.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}),
        "/api/v1/auth/login",
        "post",
    )
    assert login.status_code == 200 and login.json()["user"]["role"] == "admin"
    for body, status in (
        ({"username": ADMIN[0], "password": "wrong"}, 401),
        ({"username": ADMIN[0]}, 422),
        ({"username": ADMIN[0], "password": "x", "colour": 1}, 400),
    ):
        assert (
            checker.check(server.post("/api/v1/auth/login", json=body), "/api/v1/auth/login", "post").status_code
            == status
        )
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert call("POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh", headers=refresh).status_code == 200
    assert call("POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh").status_code == 401  # an access token
    assert call("GET", "/api/v1/auth/profile", "/api/v1/auth/profile").json()["username"] == ADMIN[0]
    assert call("GET", "/api/v1/auth/attempts", "/api/v1/auth/attempts").json()["attempts"]
    assert call("GET", "/api/v1/auth/attempts?limit=0", "/api/v1/auth/attempts").status_code == 400
    assert checker.check(server.get("/api/v1/queue"), "/api/v1/queue", "get").status_code == 401

    # server
    assert call("GET", "/api/v1/status", "/api/v1/status").json()["status"] == "ok"
    assert call("GET", "/api/v1/system", "/api/v1/system").status_code == 200

    # generation: waiting (200, images as base64), queued (202), each mode, upscale
    done = call("POST", "/api/v1/generate", "/api/v1/generate", json={**FAST, "batch_size": 2}).json()
    assert done["status"] == "completed" and len(done["images"]) == 2 and done["images"][0]["data"]
    queued = call("POST", "/api/v1/generate/text2img", "/api/v1/generate/text2img", json=FAST)
    assert queued.status_code == 202
    init = png_base64(test_image(64))
    img2img = call(
        "POST",
        "/api/v1/generate/img2img",
        "/api/v1/generate/img2img",
        json={**FAST, "init_image": init, "denoising_strength": 0.5, "wait": True},
    )
    assert img2img.json()["status"] == "completed"
    inpaint = call(
        "POST",
        "/api/v1/generate/inpainting",
        "/api/v1/generate/inpainting",
        files={"init_image": ("i.png", _png(init)), "mask_image": ("m.png", _png(init))},
        data={"prompt": "x", "steps": "1", "sampler": "euler", "wait": "true", "hires": '{"scale": 1.5, "steps": 1}'},
    )
    assert inpaint.json()["parameters"]["hires"] == {"scale": 1.5, "steps": 1}
    upscale = call(
        "POST",
        "/api/v1/upscale",
        "/api/v1/upscale",
        json={"image": png_base64(test_image(32)), "upscaler": "x4", "wait": True},
    )
    assert upscale.json()["status"] == "completed"
    for path, body, status in (
        ("/api/v1/generate", {**FAST, "steps": 0}, 422),
        ("/api/v1/generate/text2img", {**FAST, "colour": "red"}, 400),
        ("/api/v1/generate/img2img", {**FAST}, 422),
        ("/api/v1/generate/inpainting", {**FAST, "init_image": init}, 422),
        ("/api/v1/upscale", {"image": init, "upscaler": "nope"}, 404),
        ("/api/v1/generate/video", {"prompt": "x", "video_frames": 0}, 422),
    ):
        assert call("POST", path, path, json=body).status_code == status

    # jobs
    job_id = done["job_id"]
    for documented in ("/api/v1/generate/{job_id}", "/api/v1/jobs/{job_id}"):
        base = documented.replace("{job_id}", job_id)
        assert call("GET", base + "?base64=true", documented).json()["images"][1]["data"]
        assert call("GET", base.replace(job_id, "nope"), documented).status_code == 404
    assert call("GET", f"/api/v1/generate/{job_id}?base64=maybe", "/api/v1/generate/{job_id}").status_code == 400
    image_path = "/api/v1/jobs/{job_id}/images/{index}"
    image = call("GET", done["images"][0]["url"], image_path)
    assert image.headers["Content-Type"] == "image/png"
    assert (
        call("GET", done["images"][0]["url"], image_path, headers={"If-None-Match": image.headers["ETag"]}).status_code
        == 304
    )
    assert call("GET", done["images"][0]["url"] + "?size=32", image_path).status_code == 200
    assert call("GET", done["images"][0]["url"] + "?size=5", image_path).status_code == 400
    assert call("GET", f"/api/v1/jobs/{job_id}/images/9", image_path).status_code == 404
    # an image job has no clips (a real video: tests/api/test_video_api.py, checked against the same document)
    assert call("GET", f"/api/v1/jobs/{job_id}/videos/0", "/api/v1/jobs/{job_id}/videos/{index}").status_code == 404
    assert call("GET", "/api/v1/queue?status=queued,running,completed", "/api/v1/queue").json()["jobs"]
    assert call("GET", "/api/v1/queue?order=sideways", "/api/v1/queue").status_code == 400
    with requests.get(server.url(f"/api/v1/generate/{job_id}/events"), headers=auth, stream=True, timeout=60) as stream:
        checker.check(stream, "/api/v1/generate/{job_id}/events", "get")
        state = next(sse_events(stream))
    job_schema = checker.operation("/api/v1/generate/{job_id}", "get")["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    checker.validate(state["data"], job_schema, "the state event of a job stream")
    with requests.get(server.url("/api/v1/events"), headers=auth, stream=True, timeout=60) as stream:
        checker.check(stream, "/api/v1/events", "get")
    assert call("GET", "/api/v1/events?last_event_id=x", "/api/v1/events").status_code == 400
    assert call("GET", "/api/v1/generate/nope/events", "/api/v1/generate/{job_id}/events").status_code == 404
    running = call("POST", "/api/v1/generate/text2img", "/api/v1/generate/text2img", json={**FAST, "steps": 30}).json()[
        "job_id"
    ]
    assert call("DELETE", f"/api/v1/jobs/{running}", "/api/v1/jobs/{job_id}").status_code in (204, 409)
    assert call("DELETE", f"/api/v1/generate/{running}", "/api/v1/generate/{job_id}").status_code in (200, 409)
    assert call("DELETE", f"/api/v1/generate/{job_id}", "/api/v1/generate/{job_id}").status_code == 409
    assert call("DELETE", f"/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}").status_code == 204
    assert call("DELETE", f"/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}").status_code == 404

    # the model library
    assert call("POST", "/api/v1/models/scan", "/api/v1/models/scan").json()["models"] >= 4
    assert call("GET", "/api/v1/models", "/api/v1/models").json()["total"] >= 4
    assert call("GET", "/api/v1/models?type=nothing", "/api/v1/models").status_code == 400
    assert call("GET", "/api/v1/models/lora", "/api/v1/models/{model_id}").json()["models"][0]["name"] == "style"
    details = call("GET", "/api/v1/models/checkpoint/sd1.safetensors?hashes=true", "/api/v1/models/{model_id}")
    assert details.status_code == 200 and details.json()["legacy_hash"], details.text
    assert call("GET", "/api/v1/models/checkpoint/nope", "/api/v1/models/{model_id}").status_code == 404
    recipes = call("GET", "/api/v1/models/recipes", "/api/v1/models/recipes").json()["recipes"]
    assert next(r for r in recipes if r["name"] == "taesd")["installed"]  # the synthetic taesd/taesd.safetensors
    assert call("GET", "/api/v1/presets", "/api/v1/presets").json()["presets"][0]["fields"]["steps"] == 1
    assert call("GET", "/api/v1/presets/fast", "/api/v1/presets/{name}").json()["name"] == "fast"
    assert call("GET", "/api/v1/presets/nope", "/api/v1/presets/{name}").status_code == 404
    assert call("GET", "/api/v1/prompts", "/api/v1/prompts").json()["templates"][0]["kind"] == "prompts"
    assert call("GET", "/api/v1/prompts?type=x", "/api/v1/prompts").status_code == 400
    assert call("GET", "/api/v1/prompts/prompts/photo", "/api/v1/prompts/{kind}/{name}").json()["template"]
    assert call("GET", "/api/v1/prompts/prompts/nope", "/api/v1/prompts/{kind}/{name}").status_code == 404
    loaded = call("POST", "/api/v1/models/load", "/api/v1/models/load", json={"model": "sd1", "wait": True})
    assert loaded.json()["status"] == "completed"
    assert call("POST", "/api/v1/models/load", "/api/v1/models/load", json={"model": "nope"}).status_code == 404
    # a real conversion's answer: tests/api/test_convert_api.py, checked against the same document
    assert call("POST", "/api/v1/models/convert", "/api/v1/models/convert", json={"model": "nope"}).status_code == 404
    assert call("POST", "/api/v1/models/load", "/api/v1/models/load", json={"flash_attn": 1}).status_code == 422
    unloaded = call("POST", "/api/v1/models/unload", "/api/v1/models/unload", json={})
    assert unloaded.status_code == 202
    while call("GET", f"/api/v1/jobs/{unloaded.json()['job_id']}", "/api/v1/jobs/{job_id}").json()["status"] in (
        "queued",
        "running",
    ):
        time.sleep(0.1)
    assert call("POST", "/api/v1/models/unload", "/api/v1/models/unload", json={"wait": 1}).status_code == 422

    # model downloads (no hub is reachable here: the download is cancelled at once)
    downloads, one = "/api/v1/models/downloads", "/api/v1/models/downloads/{download_id}"
    download = call("POST", downloads, downloads, json={"source": "hf:owner/repo/model.safetensors"}).json()
    assert call("POST", downloads, downloads, json={"source": "hf:x"}).status_code == 422
    assert call("POST", downloads, downloads, json={"recipe": "nope"}).status_code == 404
    assert call("GET", downloads, downloads).json()["downloads"][0]["id"] == download["id"]
    assert call("GET", f"{downloads}?limit=-1", downloads).status_code == 400
    assert call("GET", f"{downloads}/{download['id']}", one).json()["id"] == download["id"]
    assert call("DELETE", f"{downloads}/{download['id']}", one).json()["status"] in ("cancelled", "failed")
    assert call("GET", f"{downloads}/nope", one).status_code == 404
    assert call("DELETE", f"{downloads}/nope", one).status_code == 404

    assert call(
        "POST", "/api/v1/auth/logout", "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    ).json() == {"logged_out": True}

    # Every /api/v1 operation was called and its answers checked.
    operations = {
        (path, method)
        for path, item in checker.document["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    }
    assert {(path, method) for path, method, _ in checker.checked} == operations


def _png(encoded: str) -> bytes:
    return base64.b64decode(encoded)
