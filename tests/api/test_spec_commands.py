"""The spec's command lines and model names, exactly as it prints them:
``stable-diffusion-rest-server --models-dir ... --checkpoints checkpoints --ui-dir ../webui``,
``--model-dir``, and ``GET /api/v1/models/{model_id}`` with the bare name ``generate`` takes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from server_helpers import free_port, link_models

pytestmark = pytest.mark.slow


@contextmanager
def _running(command: list[str], cwd: Path, data_dir: Path) -> Iterator[str]:
    """Run a server command line unchanged; where to listen and keep data comes from the
    environment (SDREST_PORT, SDREST_DATA_DIR), so the command stays as the spec prints it."""
    port = free_port()
    env = {**os.environ, "SDREST_PORT": str(port), "SDREST_HOST": "127.0.0.1", "SDREST_DATA_DIR": str(data_dir)}
    env.pop("SDREST_CONFIG", None)
    exe = shutil.which(command[0], path=str(Path(sys.executable).parent))
    assert exe, f"{command[0]} is installed"
    log = cwd / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([exe, *command[1:]], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                assert process.poll() is None, log.read_text()
                try:
                    if requests.get(base + "/api/v1/status", timeout=2).json()["worker"]["alive"]:
                        break
                except (requests.RequestException, ValueError, KeyError):
                    pass
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_the_spec_server_command_line_as_written(models, tmp_path: Path) -> None:
    link_models(models, tmp_path / "models")
    (tmp_path / "build").mkdir()
    (tmp_path / "webui").mkdir()
    (tmp_path / "webui" / "index.html").write_text("<title>spec ui</title>")
    command = [
        "stable-diffusion-rest-server",
        "--models-dir",
        str(tmp_path / "models"),
        "--checkpoints",
        "checkpoints",
        "--ui-dir",
        "../webui",
    ]
    with _running(command, tmp_path / "build", tmp_path / "data") as base:
        ui = requests.get(base + "/ui/", timeout=30)
        assert ui.status_code == 200 and "spec ui" in ui.text
        names = [m["name"] for m in requests.get(base + "/api/v1/models/checkpoint", timeout=30).json()["models"]]
        assert names == ["sd1"]


def test_model_dir_is_an_alias_of_models_dir(models, tmp_path: Path) -> None:
    link_models(models, tmp_path / "models")
    command = ["stable-diffusion-rest-server", "--model-dir", str(tmp_path / "models")]
    with _running(command, tmp_path, tmp_path / "data") as base:
        listed = requests.get(base + "/api/v1/models/checkpoint", timeout=30).json()["models"]
        assert [m["name"] for m in listed] == ["sd1"]


def test_model_details_by_the_bare_name_generate_accepts(models, tmp_path: Path) -> None:
    link_models(models, tmp_path / "models")
    (tmp_path / "models" / "checkpoints" / "sd15").mkdir()
    os.link(models.checkpoint, tmp_path / "models" / "checkpoints" / "sd15" / "sd-v1-5.safetensors")
    with _running(["sdrest", "serve", "--models-dir", str(tmp_path / "models")], tmp_path, tmp_path / "data") as base:
        bare = requests.get(base + "/api/v1/models/sd1", timeout=30)
        assert bare.status_code == 200 and bare.json()["id"] == "checkpoint/sd1.safetensors"
        nested = requests.get(base + "/api/v1/models/sd15/sd-v1-5", timeout=30).json()
        assert nested["id"] == "checkpoint/sd15/sd-v1-5.safetensors" and nested["architecture"]
        full = requests.get(base + "/api/v1/models/checkpoint/sd1.safetensors", timeout=30).json()
        assert full == bare.json()
        missing = requests.get(base + "/api/v1/models/sd-v1-5", timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "model_id"
        escaping = requests.get(base + "/api/v1/models/..%2F..%2Fetc%2Fpasswd", timeout=30)
        assert escaping.status_code == 400 and escaping.json()["error"]["code"] == "invalid_name"
