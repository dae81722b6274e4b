"""Shared pieces of the compatibility API tests: servers with two checkpoint names, images."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from server_helpers import Server, link_models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/api: the auth tests' CLI helpers
from test_auth_api import add_user, sdrest_cli

__all__ = ["add_user", "sdrest_cli"]

#: A1111's fields for a fast generation on the synthetic SD1.
A1111_FAST = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 1, "sampler_name": "Euler", "seed": 3}


def compat_server(models: Any, root: Path, *args: str) -> Server:
    """A started server on :func:`compat_models` with sd1 loaded."""
    return Server(root, compat_models(models, root / "models"), "--model", "sd1", *args).start()


def compat_models(models: Any, root: Path) -> Path:
    """The synthetic models, plus a second checkpoint name (sd1b: the same file), a VAE and a style."""
    folder = link_models(models, root)
    second = folder / "checkpoints" / "sd1b.safetensors"
    if not second.exists():
        os.link(folder / "checkpoints" / "sd1.safetensors", second)
    (folder / "vae").mkdir(exist_ok=True)
    if not (folder / "vae" / "vae.safetensors").exists():
        os.link(models.vae, folder / "vae" / "vae.safetensors")
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "prompts" / "cinematic.txt").write_text("cinematic photo of {prompt}, film grain")
    (folder / "neg_prompts").mkdir(exist_ok=True)
    (folder / "neg_prompts" / "cinematic.txt").write_text("cartoon")
    return folder


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def wait_until(check: Any, timeout: float = 120, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy (a guard against hanging, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("the condition was not met in time")


def running_job(server: Server) -> dict[str, Any] | None:
    jobs = server.get("/api/v1/queue", params={"status": "running"}).json()["jobs"]
    return jobs[0] if jobs else None


def open_raw_request(
    server: Server, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> socket.socket:
    """Send a JSON POST on a raw socket and leave it waiting for the answer (close it to 'disconnect')."""
    payload = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n"
        ).encode()
        + payload
    )
    return sock


def bearer_for(server: Server, name: str, password: str) -> dict[str, str]:
    """The Authorization header of a fresh access token (POST /api/v1/auth/login)."""
    response = server.post("/api/v1/auth/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}
