"""Bad input on every compatibility route: a clear 4xx in the family's error shape, naming the
field, never a 500, and the server goes on serving."""

from __future__ import annotations

import base64

import pytest
import requests

from compat_helpers import A1111_FAST, compat_server, png_bytes
from helpers import test_image
from server_helpers import Server

pytestmark = pytest.mark.slow

IMAGE = base64.b64encode(png_bytes(test_image(32))).decode()
NOT_AN_IMAGE = base64.b64encode(b"definitely not an image").decode()

#: (path, JSON body, status, field at fault)
A1111_CASES = [
    ("/sdapi/v1/txt2img", {"steps": 0}, 422, "steps"),
    ("/sdapi/v1/txt2img", {"steps": "many"}, 422, "steps"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "width": 65}, 422, "width"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "sampler_name": "UniPC"}, 422, "sampler_name"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "sampler_name": "DPM++ 2M Bogus"}, 422, "sampler_name"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "scheduler": "Sometimes"}, 422, "scheduler"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "batch_size": 16, "n_iter": 2}, 422, "batch_size"),
    (
        "/sdapi/v1/txt2img",
        {**A1111_FAST, "override_settings": {"sd_model_checkpoint": "missing"}},
        404,
        "override_settings.sd_model_checkpoint",
    ),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "override_settings": {"sd_vae": "missing"}}, 404, "override_settings.sd_vae"),
    (
        "/sdapi/v1/txt2img",
        {**A1111_FAST, "override_settings": {"samples_format": "tiff"}},
        422,
        "override_settings.samples_format",
    ),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "override_settings": "fast"}, 422, "override_settings"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "styles": ["missing"]}, 404, "styles[0]"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "prompt": "x <lora:missing:1>"}, 404, "prompt"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "enable_hr": True, "hr_upscaler": "Bogus"}, 422, "hr_upscaler"),
    ("/sdapi/v1/txt2img", {**A1111_FAST, "enable_hr": True, "hr_scale": 9}, 422, "hr_scale"),
    ("/sdapi/v1/img2img", {**A1111_FAST}, 422, "init_images"),
    ("/sdapi/v1/img2img", {**A1111_FAST, "init_images": [NOT_AN_IMAGE]}, 422, "init_images[0]"),
    ("/sdapi/v1/img2img", {**A1111_FAST, "init_images": "one"}, 422, "init_images"),
    ("/sdapi/v1/img2img", {**A1111_FAST, "init_images": [IMAGE], "mask": NOT_AN_IMAGE}, 422, "mask"),
    ("/sdapi/v1/img2img", {**A1111_FAST, "init_images": [IMAGE], "denoising_strength": 2}, 422, "denoising_strength"),
    ("/sdapi/v1/options", {"sd_model_checkpoint": "missing"}, 404, "sd_model_checkpoint"),
    ("/sdapi/v1/options", {"CLIP_stop_at_last_layers": "two"}, 422, "CLIP_stop_at_last_layers"),
    ("/sdapi/v1/options", {"samples_format": "tiff"}, 422, "samples_format"),
    ("/sdapi/v1/extra-single-image", {}, 422, "image"),
    ("/sdapi/v1/extra-single-image", {"image": NOT_AN_IMAGE, "upscaler_1": "Lanczos"}, 422, "image"),
    ("/sdapi/v1/extra-single-image", {"image": IMAGE, "upscaler_1": "missing"}, 404, "upscaler_1"),
    (
        "/sdapi/v1/extra-single-image",
        {"image": IMAGE, "upscaler_1": "Lanczos", "upscaling_resize": 100},
        422,
        "upscaling_resize",
    ),
    ("/sdapi/v1/png-info", {}, 422, "image"),
    ("/sdapi/v1/png-info", {"image": 5}, 422, "image"),
    ("/sdapi/v1/png-info", {"image": NOT_AN_IMAGE}, 422, "image"),
]

OPENAI_CASES = [
    ("/v1/images/generations", {}, 400, "prompt"),
    ("/v1/images/generations", {"prompt": 5}, 400, "prompt"),
    ("/v1/images/generations", {"prompt": "x", "n": 0}, 400, "n"),
    ("/v1/images/generations", {"prompt": "x", "size": "big"}, 400, "size"),
    ("/v1/images/generations", {"prompt": "x", "size": "64x65", "steps": 1}, 400, "size"),
    ("/v1/images/generations", {"prompt": "x", "response_format": "xml"}, 400, "response_format"),
    ("/v1/images/generations", {"prompt": "x", "output_format": "gif"}, 400, "output_format"),
    ("/v1/images/generations", {"prompt": "x", "stream": True}, 400, "stream"),
    ("/v1/images/generations", {"prompt": "x", "steps": 0}, 400, "steps"),
    ("/v1/images/generations", {"prompt": "x", "model": "missing"}, 404, "model"),
    ("/v1/images/edits", {"prompt": "x"}, 400, "image"),
    ("/v1/images/edits", {"prompt": "x", "image": NOT_AN_IMAGE}, 400, "image"),
    ("/v1/images/edits", {"prompt": "x", "images": "one"}, 400, "images"),
    ("/v1/images/edits", {"prompt": "x", "image": IMAGE, "mask": NOT_AN_IMAGE}, 400, "mask"),
]

A1111_POSTS = [
    "/sdapi/v1/txt2img",
    "/sdapi/v1/img2img",
    "/sdapi/v1/options",
    "/sdapi/v1/extra-single-image",
    "/sdapi/v1/png-info",
]
OPENAI_POSTS = ["/v1/images/generations", "/v1/images/edits"]


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    server = compat_server(models, tmp_path_factory.mktemp("compat-bad"))
    yield server
    server.stop()


@pytest.mark.parametrize(("path", "body", "status", "field"), A1111_CASES)
def test_a1111_bad_fields(server: Server, path: str, body: dict, status: int, field: str) -> None:
    response = server.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field and error["detail"].startswith(field) and error["errors"] == error["detail"]


@pytest.mark.parametrize(("path", "body", "status", "field"), OPENAI_CASES)
def test_openai_bad_fields(server: Server, path: str, body: dict, status: int, field: str) -> None:
    response = server.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == field and error["message"].startswith(field) and error["type"]


@pytest.mark.parametrize("path", A1111_POSTS + OPENAI_POSTS)
def test_bodies_that_are_not_json_objects(server: Server, path: str) -> None:
    for kwargs, status in (
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ({"json": [1, 2]}, 400),
        ({"data": "a=b", "headers": {"Content-Type": "text/plain"}}, 415),
    ):
        response = server.post(path, **kwargs)
        assert response.status_code == status, (path, kwargs, response.text)
        body = response.json()
        assert body["error"]["message"] if path.startswith("/v1/") else body["detail"]


def test_openai_multipart_edit_with_broken_files(server: Server) -> None:
    files = {"image": ("x.png", b"not a png", "image/png")}
    response = server.post("/v1/images/edits", files=files, data={"prompt": "x"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "image"
    files = {"image": ("x.png", png_bytes(test_image()), "image/png"), "mask": ("m.png", b"garbage", "image/png")}
    response = server.post("/v1/images/edits", files=files, data={"prompt": "x", "steps": "zero"})
    assert response.status_code == 400 and response.json()["error"]["param"] in ("mask", "steps")


def test_routes_without_input_ignore_stray_bodies_and_query(server: Server) -> None:
    for path in (
        "/sdapi/v1/interrupt",
        "/sdapi/v1/skip",
        "/sdapi/v1/refresh-checkpoints",
        "/sdapi/v1/refresh-loras",
        "/sdapi/v1/refresh-vae",
    ):
        assert server.post(path, data="junk", headers={"Content-Type": "text/plain"}).status_code == 200, path
    for path in ("/sdapi/v1/progress?skip_current_image=maybe", "/sdapi/v1/sd-models?x=1", "/v1/models?limit=-1"):
        assert server.get(path).status_code == 200, path
    missing = server.get("/v1/models/../../etc/passwd")
    assert missing.status_code == 404
    assert server.get("/sdapi/v1/options").status_code == 200  # still serving


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/no-such-route", 404),
        ("GET", "/v1/models/a%0Anewline", 404),  # the route's converter does not match a newline
        ("DELETE", "/v1/models", 405),
    ],
)
def test_openai_urls_no_route_matches_answer_in_openais_shape(
    server: Server, method: str, path: str, status: int
) -> None:
    response = requests.request(method, server.url(path), timeout=60)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/sdapi/v1/no-such-route", 404), ("DELETE", "/sdapi/v1/options", 405)]
)
def test_a1111_urls_no_route_matches_answer_in_a1111s_shape(
    server: Server, method: str, path: str, status: int
) -> None:
    response = requests.request(method, server.url(path), timeout=60)
    assert response.status_code == status, response.text
    assert {"error", "detail", "errors"} <= set(response.json())


def test_unrouted_urls_elsewhere_keep_the_native_shape(server: Server) -> None:
    # a path under the native API, and one that only starts like the OpenAI prefix
    for path in ("/api/v1/no-such-route", "/v1x/models"):
        response = server.get(path)
        assert response.status_code == 404, path
        assert set(response.json()["error"]) == {"code", "message", "field"}, path
        assert response.json()["error"]["code"] == "not_found", path
