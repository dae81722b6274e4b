"""GET /api/v1/system: the backends the build recorded; on a CPU build, GPUs plainly reported as none."""

from __future__ import annotations

import pytest

from sdrest._native.buildinfo import build_info
from server_helpers import Server

pytestmark = pytest.mark.slow


def test_system_on_a_cpu_build_says_no_gpu(tmp_path) -> None:
    server = Server(tmp_path, tmp_path / "models").start()
    try:
        system = server.get("/api/v1/system").json()
    finally:
        server.stop()
    assert system["backends"] == build_info()["backends"]
    if build_info()["backends"] != ["cpu"]:
        pytest.skip("a GPU build: tests/test_gpus.py checks its report")
    gpu = system["gpu"]
    assert gpu == {"present": False, "backends": [], "devices": [], "driver": None, "message": gpu["message"]}
    assert gpu["message"].startswith("no GPU: this is a CPU build")
