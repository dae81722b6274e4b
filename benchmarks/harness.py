"""Run the real server (``sdrest serve`` under Waitress, real worker process, real SQLite) on a
loopback port, and drive it over HTTP: the benchmarks' harness, and the base of the tests' one.

The tests' :class:`server_helpers.Server` adds their hooks (tests/hooks) to this one; the
benchmarks use it as it is, so what they measure runs no test code. Benchmarks run as
``python benchmarks/x.py`` have this folder on ``sys.path`` already; the tests reach it through
pytest's ``pythonpath`` setting (pyproject.toml).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from sdrest.synthetic import SyntheticModels

#: The cheapest real generation: 64 px, one step.
FAST = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 1, "sampler": "euler", "seed": 3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def link_models(models: SyntheticModels, root: Path) -> Path:
    """A models/ tree holding the synthetic files (hard links: no 1 GB copies)."""
    layout = {
        "checkpoints/sd1.safetensors": models.checkpoint,
        "lora/style.safetensors": models.lora,
        "esrgan/x4.safetensors": models.esrgan,
        "taesd/taesd.safetensors": models.taesd,
    }
    for relative, source in layout.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return root


def sdrest_command(command: str) -> list[str]:
    """``sdrest COMMAND``, with this Python's ``sdrest`` script."""
    return [shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest", command]


class Server:
    """One ``sdrest serve`` process; ``restart()`` keeps its data directory."""

    def __init__(self, root: Path, models_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.models_dir = models_dir
        self.data_dir = root / "data"
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.env.pop("SDREST_CONFIG", None)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def command(self) -> list[str]:
        """The ``sdrest serve`` command line (flags given later win over these)."""
        return [
            *sdrest_command("serve"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--models-dir",
            str(self.models_dir),
            "--data-dir",
            str(self.data_dir),
            "--threads",
            "2",
            "--log-level",
            "debug",
            *self.args,
        ]

    def start(self, wait_for_worker: bool = True) -> Server:
        command = self.command()
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_text()[-3000:]}")
            try:
                response = requests.get(self.url("/api/v1/status"), timeout=2)
                if response.status_code == 401:  # an auth-protected server is up; its worker starts alone
                    return self
                if not wait_for_worker or response.json()["worker"]["alive"]:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up: {self.log_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            if sig == signal.SIGKILL:
                self.process.kill()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        if hasattr(self, "log"):
            self.log.close()

    def kill9(self) -> None:
        """SIGKILL the server only (its worker notices the closed pipe and exits)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        self.log.close()

    def restart(self, *args: str) -> Server:
        self.stop()
        if args:
            self.args = list(args)
        self.port = free_port()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- API helpers ---

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url(path), timeout=kwargs.pop("timeout", 60), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url(path), timeout=kwargs.pop("timeout", 300), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.delete(self.url(path), timeout=kwargs.pop("timeout", 60), **kwargs)

    def submit(self, **fields: Any) -> dict[str, Any]:
        """Queue a job (202) unless ``wait=True`` is given (POST /generate waits by default)."""
        response = self.post("/api/v1/generate", json={**FAST, "wait": False, **fields})
        assert response.status_code in (200, 202), response.text
        return response.json()

    def wait_job(
        self, job_id: str, timeout: float = 180, until: tuple[str, ...] = ("completed", "failed", "cancelled")
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/generate/{job_id}").json()
            if job["status"] in until:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")

    def status(self) -> dict[str, Any]:
        return self.get("/api/v1/status").json()
