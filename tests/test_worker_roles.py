"""Roles: ``sdrest serve --no-worker`` (an API node: HTTP only) and ``sdrest worker`` (generation
only) sharing one job store (here the embedded SQLite file of one data folder). A job queued on
the API node runs on the worker node; the API node lists the worker and serves the images; a
cancel made on the API node stops the job on the worker; a second worker with a live worker's id
is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness import link_models
from server_helpers import Server, WorkerNode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roles(models, tmp_path_factory) -> Iterator[tuple[Server, WorkerNode]]:
    root = tmp_path_factory.mktemp("roles")
    models_dir = link_models(models, root / "models")
    api = Server(root, models_dir, "--no-worker", "--model", "sd1").start(wait_for_worker=False)
    node = WorkerNode(root, models_dir, "node-a", "--data-dir", str(api.data_dir), "--model", "sd1")
    try:
        node.start().wait_live(api)
        yield api, node
    finally:
        node.stop()
        api.stop()


def _job(api: Server, job_id: str) -> dict[str, Any]:
    return api.get(f"/api/v1/generate/{job_id}").json()


def test_a_job_queued_on_the_api_node_runs_on_the_worker_node(roles) -> None:
    api, _ = roles
    done = api.submit(seed=7, wait=True)
    assert done["status"] == "completed" and done["worker"] == "node-a", done
    image = api.get(done["images"][0]["url"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    status = api.status()
    [worker] = status["workers"]
    assert (worker["id"], worker["local"], worker["alive"]) == ("node-a", False, True)
    assert worker["loaded_model"] == "sd1" and status["worker"]["alive"] is True
    assert "euler" in status["capabilities"]["samplers"]  # the worker's, as this node has no library


def test_a_cancel_on_the_api_node_stops_the_job_on_the_worker(roles) -> None:
    api, node = roles
    long = api.submit(seed=8, steps=150, width=128, height=128)
    while _job(api, long["job_id"])["progress"]["stage"] != "sampling":
        assert _job(api, long["job_id"])["status"] in ("queued", "running")
        time.sleep(0.05)
    assert api.delete(f"/api/v1/generate/{long['job_id']}").status_code in (200, 202)
    assert _job(api, long["job_id"])["status"] == "cancelled"
    # The worker read the job's row, saw the cancel and stopped the library: it is free for the next.
    assert api.submit(seed=9, wait=True)["status"] == "completed"
    assert f"cancelling running job {long['job_id']}" in node.log_text()
    assert _job(api, long["job_id"])["images"] == []


def test_a_second_worker_with_a_live_workers_id_is_refused(roles, tmp_path) -> None:
    api, _ = roles
    twin = WorkerNode(tmp_path, api.models_dir, "node-a", "--data-dir", str(api.data_dir))
    twin.start()
    assert twin.process is not None
    assert twin.process.wait(60) == 1
    assert "worker id 'node-a' is in use by a live worker" in twin.log_text()
    assert api.submit(seed=10, wait=True)["worker"] == "node-a"  # the first one serves on
