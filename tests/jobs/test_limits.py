"""Work one request may cause is bounded: upscale results, model hashing."""

from __future__ import annotations

import pytest

from helpers import test_image
from server_helpers import Server, add_users, link_models, png_base64

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    server = Server(root, link_models(models, root / "models"), "--auth", "jwt", "--max-image-pixels", "4096")
    add_users(server, {"alice": ("alice-pw-1", "user"), "boss": ("boss-pw-1", "admin")})
    server.start()
    yield server
    server.stop()


def _headers(server: Server, name: str) -> dict[str, str]:
    token = server.post("/api/v1/auth/login", json={"username": name, "password": f"{name}-pw-1"}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_an_upscale_result_is_bounded(server) -> None:
    headers = _headers(server, "alice")
    body = {"image": png_base64(test_image(64)), "upscaler": "x4", "wait": False}
    too_big = server.post("/api/v1/upscale", json={**body, "factor": 4}, headers=headers)  # 256x256 > 4 x 64x64
    assert too_big.status_code == 422 and too_big.json()["error"]["field"] == "factor"
    fits = server.post("/api/v1/upscale", json={**body, "factor": 2}, headers=headers)  # 128x128: exactly 4x
    assert fits.status_code == 202, fits.text
    server.delete(f"/api/v1/generate/{fits.json()['job_id']}", headers=headers)


def test_only_admins_have_model_files_hashed(server) -> None:
    url = "/api/v1/models/checkpoint/sd1.safetensors"
    refused = server.get(url, params={"hashes": "true"}, headers=_headers(server, "alice"))
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "hashes"
    assert server.get(url, headers=_headers(server, "alice")).status_code == 200  # the details themselves
    hashed = server.get(url, params={"hashes": "true"}, headers=_headers(server, "boss"))
    assert hashed.status_code == 200 and len(hashed.json()["sha256"]) == 64
