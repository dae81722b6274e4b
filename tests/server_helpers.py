"""Run the real server (``sdrest serve`` under Waitress, real worker process, real SQLite)
on a loopback port for the API tests.

The server harness itself is benchmarks/harness.py (one piece of code for tests and benchmarks);
this adds the tests' hooks and the fixtures' and HTTP helpers."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from PIL import Image

import harness
from harness import FAST as FAST  # re-exported: the tests take them from here
from harness import free_port as free_port
from harness import link_models
from sdrest.synthetic import SyntheticModels

HOOKS = Path(__file__).resolve().parent / "hooks"
#: A prompt starting with this makes the test hook crash the worker: CRASH_PREFIX + "abort".
CRASH_PREFIX = "sdrest-test-crash:"
#: A job with the prompt HOLD_PREFIX + "<path>" starts running, then waits until <path> exists.
HOLD_PREFIX = "sdrest-test-hold:"
#: A job with the prompt HOLD_WRITTEN_PREFIX + "<path>" writes its images, then reports them only once <path> exists.
HOLD_WRITTEN_PREFIX = "sdrest-test-hold-written:"


def sd1_server(models: SyntheticModels, tmp_path_factory: Any, name: str, *args: str) -> Iterator[Server]:
    """A started server with the synthetic models and SD1 loaded (for a module-scoped fixture:
    ``yield from sd1_server(models, tmp_path_factory, "name", "--flag", ...)``)."""
    root = tmp_path_factory.mktemp(name)
    server = Server(root, link_models(models, root / "models"), "--model", "sd1", *args).start()
    try:
        yield server
    finally:
        server.stop()


def users_server(
    models: SyntheticModels, tmp_path_factory: Any, name: str, users: Mapping[str, tuple[str, str]], *args: str
) -> Iterator[Server]:
    """A started ``--auth jwt`` server with local ``users`` ({name: (password, role)}), for a
    module-scoped fixture: ``yield from users_server(models, tmp_path_factory, "name", USERS, ...)``."""
    root = tmp_path_factory.mktemp(name)
    server = Server(root, link_models(models, root / "models"), "--auth", "jwt", *args)
    add_users(server, users)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def link_models_with_copies(models: Any, root: Path, names: tuple[str, ...] = ("sd1b", "sd1c")) -> Path:
    """:func:`harness.link_models`, plus the SD1 checkpoint linked again under each of ``names``:
    other files, so other models to the worker (for tests of resident models and their memory)."""
    link_models(models, root)
    checkpoints = root / "checkpoints"
    for name in names:
        if not (checkpoints / f"{name}.safetensors").exists():
            os.link(checkpoints / "sd1.safetensors", checkpoints / f"{name}.safetensors")
    return root


class Server(harness.Server):
    """The benchmarks' server harness with the tests' hooks (tests/hooks/sitecustomize.py: prompts
    "sdrest-test-crash:<how>" crash the worker, "sdrest-test-hold:<path>" hold it)."""

    def __init__(self, root: Path, models_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        python_path = [str(HOOKS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        super().__init__(root, models_dir, *args, env={"PYTHONPATH": os.pathsep.join(python_path), **(env or {})})

    @contextlib.contextmanager
    def held_worker(self, **fields: Any) -> Iterator[dict[str, Any]]:
        """A running job that keeps the worker busy until the ``with`` block ends, so jobs
        submitted inside the block are certainly queued behind it (tests/hooks/sitecustomize.py)."""
        flag = self.root / f"release-{uuid.uuid4().hex}"
        job = self.submit(**{"seed": 1, **fields, "prompt": HOLD_PREFIX + str(flag)})
        try:
            self.wait_job(job["job_id"], until=("running",))
            yield job
        finally:
            flag.touch()


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def sse_events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream response into {"id", "event", "data"} dicts."""
    import json

    event: dict[str, Any] = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw is None:
            continue
        if raw == "":
            if "event" in event or "data" in event:
                if "data" in event:
                    event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif raw.startswith(":"):
            continue
        else:
            key, _, value = raw.partition(":")
            event[key] = value[1:] if value.startswith(" ") else value


def add_users(server: Server, users: Mapping[str, tuple[str, str]]) -> None:
    """Create local users ``{name: (password, role)}`` for a server that has not started yet."""
    from sdrest.auth.store import AuthStore

    server.data_dir.mkdir(parents=True, exist_ok=True)
    with AuthStore(server.data_dir / "auth.sqlite3") as store:
        for name, (password, role) in users.items():
            store.add_user(name, password, role)


def bearer_headers(server: Server, users: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """Log each user in; their ``Authorization`` headers by name."""
    headers = {}
    for name, (password, _role) in users.items():
        response = server.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        headers[name] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return headers


class WorkerNode:
    """One ``sdrest worker`` process (generation only, for API nodes sharing its store), with the
    tests' hooks; its log is ``<root>/worker-<name>.log``."""

    def __init__(self, root: Path, models_dir: Path, name: str, *args: str) -> None:
        self.name = name
        self.log_path = root / f"worker-{name}.log"
        self.command = [
            *harness.sdrest_command("worker"),
            "--models-dir",
            str(models_dir),
            "--threads",
            "2",
            "--log-level",
            "debug",
            "--worker-id",
            name,
            *args,
        ]
        python_path = [str(HOOKS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
        self.env.pop("SDREST_CONFIG", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerNode:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_live(self, api: Server) -> WorkerNode:
        """Until ``api``'s /status lists this worker alive with a running worker process."""
        while not any(w["id"] == self.name and w["alive"] and w["pid"] for w in api.status()["workers"]):
            assert self.process is not None and self.process.poll() is None, self.log_text()[-3000:]
            time.sleep(0.1)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process and wait for it; its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_nodes(root: Path, models_dir: Path, count: int, *args: str) -> list[WorkerNode]:
    """``count`` worker nodes ``w0``, ``w1``, ... (not started), each with its own data folder
    under ``root`` and one generation thread, and ``args`` (the store, the lease, ...)."""
    return [
        WorkerNode(root, models_dir, f"w{n}", "--data-dir", str(root / f"worker{n}"), "--threads", "1", *args)
        for n in range(count)
    ]
