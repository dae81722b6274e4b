"""Bad input gets a clear 4xx JSON error naming the field, and the server keeps serving."""

from __future__ import annotations

import base64
import http.server
import threading

import pytest
import requests

from helpers import test_image
from server_helpers import FAST, Server, link_models, png_base64

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    server = Server(
        root,
        link_models(models, root / "models"),
        "--model",
        "sd1",
        "--max-body-mb",
        "1",
        "--url-fetch",
        "any",
        "--url-timeout",
        "2",
    ).start()
    yield server
    assert server.status()["status"] == "ok"  # still serving after all of it
    server.stop()


def _error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"colour": "red"}, 400, "unknown_field", "colour"),
        ({"width": "64"}, 422, "invalid_field", "width"),
        ({"width": 65}, 422, "invalid_field", "width"),
        ({"width": 8192}, 422, "invalid_field", "width"),
        ({"height": True}, 422, "invalid_field", "height"),
        ({"steps": 0}, 422, "invalid_field", "steps"),
        ({"steps": 1.5}, 422, "invalid_field", "steps"),
        ({"cfg_scale": "high"}, 422, "invalid_field", "cfg_scale"),
        ({"sampler": "eulerish"}, 422, "invalid_field", "sampler"),
        ({"sampler_name": "euler", "sampler": "euler"}, 400, "conflicting_fields", None),
        ({"scheduler": 3}, 422, "invalid_field", "scheduler"),
        ({"seed": -2}, 422, "invalid_field", "seed"),
        ({"seed": 2**64}, 422, "invalid_field", "seed"),
        ({"batch_count": 17}, 422, "invalid_field", "batch_count"),
        ({"prompt": 5}, 422, "invalid_field", "prompt"),
        ({"prompt": ""}, 422, "missing_field", "prompt"),
        ({"prompt": "x" * 20001}, 422, "invalid_field", "prompt"),
        ({"loras": {"name": "style"}}, 422, "invalid_field", "loras"),
        ({"loras": [{"name": "nope"}]}, 404, "model_not_found", "loras[0].name"),
        ({"loras": [{"weight": 1}]}, 422, "missing_field", "loras[0].name"),
        ({"loras": [{"name": "style", "extra": 1}]}, 400, "unknown_field", "loras[0].extra"),
        ({"loras": [{"name": "../checkpoints/sd1"}]}, 400, "invalid_name", "loras[0].name"),
        ({"model": "nope"}, 404, "model_not_found", "model"),
        ({"model": "../../etc/passwd"}, 400, "invalid_name", "model"),
        ({"model": "/etc/passwd"}, 400, "invalid_name", "model"),
        ({"hires": {"scale": 9}}, 422, "invalid_field", "hires.scale"),
        ({"hires": "yes"}, 422, "invalid_field", "hires"),
        ({"output_format": "gif"}, 422, "invalid_field", "output_format"),
        ({"output_quality": 0}, 422, "invalid_field", "output_quality"),
        ({"priority": 1000}, 422, "invalid_field", "priority"),
        ({"strength": 0.5}, 400, "field_not_allowed", "strength"),
        ({"wait": "yes"}, 422, "invalid_field", "wait"),
        ({"batch_size": 2, "batch_count": 2}, 400, "conflicting_fields", "batch_size"),
        ({"hires": {"colour": 1}}, 400, "unknown_field", "hires.colour"),
        ({"hires": {"upscaler": "sharpest"}}, 422, "invalid_field", "hires.upscaler"),
        ({"slg": {"layers": [1.5]}}, 422, "invalid_field", "slg.layers[0]"),
        ({"ref_images": [png_base64(test_image(8))] * 9}, 422, "invalid_field", "ref_images"),
        ({"ref_images": ["x", 3]}, 422, "invalid_field", "ref_images[1]"),
        ({"init_image": png_base64(test_image(8))}, 400, "field_not_allowed", "init_image"),
    ],
)
def test_bad_generation_fields(server: Server, fields, status, code, field) -> None:
    response = server.post("/api/v1/generate/text2img", json={**FAST, **fields})
    _error(response, status, code, field)


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"init_image": "!!!not base64!!!"}, 400, "invalid_base64", "init_image"),
        ({"init_image": base64.b64encode(b"plain text, not an image").decode()}, 422, "invalid_image", "init_image"),
        ({"init_image": png_base64(test_image())[:200]}, 422, "invalid_image", "init_image"),
        ({"init_image": "data:text/plain;base64,aGVsbG8="}, 415, "unsupported_media_type", "init_image"),
        ({"init_image": 42}, 422, "invalid_field", "init_image"),
        ({"init_image": "http://127.0.0.1:9/nothing.png"}, 422, "url_fetch_failed", "init_image"),
        ({"init_image": "ftp://example.org/x.png"}, 400, "url_not_allowed", "init_image"),
        ({"strength": 2}, 422, "invalid_field", "strength"),
        ({}, 422, "missing_field", "init_image"),
    ],
)
def test_bad_images(server: Server, fields, status, code, field) -> None:
    body = {**FAST, "init_image": png_base64(test_image()), **fields}
    if not fields:
        body.pop("init_image")
    _error(server.post("/api/v1/generate/img2img", json=body), status, code, field)


@pytest.mark.parametrize(
    ("form", "status", "code", "field"),
    [
        ({"hires": "{not json"}, 422, "invalid_field", "hires"),
        ({"hires": '{"scale": 9}'}, 422, "invalid_field", "hires.scale"),
        ({"hires": '{"colour": 1}'}, 400, "unknown_field", "hires.colour"),
        ({"loras": '[{"weight": 1}]'}, 422, "missing_field", "loras[0].name"),
        ({"wait": "perhaps"}, 422, "invalid_field", "wait"),
        ({"width": "64.5"}, 422, "invalid_field", "width"),
        ({"sampler_name": "euler", "sampler": "euler"}, 400, "conflicting_fields", "sampler_name"),
        ({"colour": "red"}, 400, "unknown_field", "colour"),
        ({"sample_method": "eulerish"}, 422, "invalid_field", "sample_method"),
    ],
)
def test_bad_form_fields(server: Server, form, status, code, field) -> None:
    fields = {"prompt": "x", "steps": "1", "width": "64", "height": "64", **form}
    _error(server.post("/api/v1/generate/text2img", data=fields), status, code, field)  # url-encoded
    files = {name: (None, value) for name, value in fields.items()}
    _error(server.post("/api/v1/generate/text2img", files=files), status, code, field)  # multipart


def test_a_file_part_where_text_is_expected(server: Server) -> None:
    response = server.post(
        "/api/v1/generate/text2img", data={"steps": "1"}, files={"prompt": ("prompt.txt", b"a red apple", "text/plain")}
    )
    _error(response, 422, "invalid_field", "prompt")


def test_image_too_large_by_bytes(server: Server) -> None:
    big = base64.b64encode(b"\x89PNG" + b"\x00" * (2 << 20)).decode()
    # Over the 1 MiB body limit: refused before parsing.
    _error(server.post("/api/v1/generate/img2img", json={**FAST, "init_image": big}), 413, "body_too_large")


def test_url_served_image_is_fetched_with_limits(server: Server) -> None:
    payload = base64.b64decode(png_base64(test_image()))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/slow.png":
                import time

                time.sleep(4)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        ok = server.post("/api/v1/generate/img2img", json={**FAST, "init_image": url + "/ok.png", "steps": 1})
        assert ok.status_code == 202, ok.text
        server.delete(f"/api/v1/generate/{ok.json()['job_id']}")
        slow = server.post("/api/v1/generate/img2img", json={**FAST, "init_image": url + "/slow.png"})
        _error(slow, 422, "url_fetch_failed", "init_image")
    finally:
        httpd.shutdown()


def test_malformed_bodies(server: Server) -> None:
    _error(
        server.post("/api/v1/generate", data="{not json", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )
    _error(server.post("/api/v1/generate", json=[1, 2]), 400, "invalid_json")
    _error(
        server.post("/api/v1/generate", data="prompt=x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    _error(
        server.post("/api/v1/generate", data=b"x" * (2 << 20), headers={"Content-Type": "application/json"}),
        413,
        "body_too_large",
    )
    form = server.post("/api/v1/generate/text2img", data={"prompt": "x", "steps": "many"})
    _error(form, 422, "invalid_field", "steps")
    infinite = server.post(
        "/api/v1/generate/text2img",
        data='{"prompt": "x", "cfg_scale": Infinity}',
        headers={"Content-Type": "application/json"},
    )  # Python's JSON reader takes it
    _error(infinite, 422, "invalid_field", "cfg_scale")


def test_bad_paths_and_queries(server: Server) -> None:
    _error(server.get("/api/v1/generate/does-not-exist"), 404, "not_found", "job_id")
    _error(server.delete("/api/v1/generate/does-not-exist"), 404, "not_found")
    _error(server.get("/api/v1/jobs/does-not-exist/images/0"), 404)
    _error(server.get("/api/v1/nothing-here"), 404)
    wrong_method = requests.put(server.url("/api/v1/status"), timeout=10)
    _error(wrong_method, 405)
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}  # RFC 9110
    for method, path in (("TRACE", "/api/v1/auth/attempts"), ("PATCH", "/sdapi/v1/txt2img"), ("PUT", "/v1/models")):
        other = requests.request(method, server.url(path), timeout=10)
        assert other.status_code == 405 and "Allow" in other.headers, (method, path)
    _error(server.get("/api/v1/queue", params={"status": "sleeping"}), 400, "invalid_query", "status")
    _error(server.get("/api/v1/queue", params={"limit": "0"}), 400, "invalid_query", "limit")
    _error(server.get("/api/v1/queue", params={"limit": "x"}), 400, "invalid_query", "limit")
    job = server.submit(wait=True)
    _error(server.get(f"/api/v1/generate/{job['job_id']}", params={"base64": "maybe"}), 400, "invalid_query")
    _error(server.get(job["images"][0]["url"], params={"size": "5000"}), 400, "invalid_query", "size")
    _error(server.get(job["images"][0]["url"].rsplit("/", 1)[0] + "/7"), 404, "not_found", "index")
    running = server.submit(steps=20)
    server.wait_job(running["job_id"], until=("running",))
    _error(server.delete(f"/api/v1/jobs/{running['job_id']}"), 409, "job_active")
    server.delete(f"/api/v1/generate/{running['job_id']}")


def test_bad_upscale_requests(server: Server) -> None:
    _error(server.post("/api/v1/upscale", json={"upscaler": "x4"}), 422, "missing_field", "image")
    _error(server.post("/api/v1/upscale", json={"image": png_base64(test_image(32))}), 422, "missing_field", "upscaler")
    _error(
        server.post("/api/v1/upscale", json={"image": png_base64(test_image(32)), "upscaler": "nope"}),
        404,
        "model_not_found",
        "upscaler",
    )
    _error(
        server.post("/api/v1/upscale", json={"image": png_base64(test_image(32)), "upscaler": "x4", "factor": 0}),
        422,
        "invalid_field",
        "factor",
    )
