"""``sdrest serve --workers 2`` on the embedded SQLite store: two supervised workers, each with its
own worker process, claim from the one queue. Two jobs run at the same time; a worker process
killed under a job costs that job nothing (it runs again and completes); a job that takes down
two workers fails, as it would take down every worker in turn."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sdrest import cli
from server_helpers import CRASH_PREFIX, HOLD_PREFIX, Server, sd1_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory) -> Iterator[Server]:
    yield from sd1_server(models, tmp_path_factory, "two-workers", "--workers", "2")


def _held(server: Server, seed: int) -> tuple[dict[str, Any], Any]:
    flag = server.root / f"release-{uuid.uuid4().hex}"
    return server.submit(prompt=HOLD_PREFIX + str(flag), seed=seed), flag


def _workers(server: Server) -> list[dict[str, Any]]:
    return server.status()["workers"]


def _running_on(server: Server, job_id: str) -> dict[str, Any]:
    """The worker entry of the worker that runs ``job_id`` (waits until one does)."""
    while True:
        for worker in _workers(server):
            if worker["running_job"] == job_id:
                return worker
        assert server.get(f"/api/v1/generate/{job_id}").json()["status"] in ("queued", "running")
        time.sleep(0.05)


def test_two_jobs_run_at_the_same_time_on_two_workers(server: Server) -> None:
    first, first_flag = _held(server, seed=1)
    second, second_flag = _held(server, seed=2)
    try:
        one = _running_on(server, first["job_id"])
        other = _running_on(server, second["job_id"])  # while the first still holds its worker
        assert one["id"] != other["id"] and one["pid"] != other["pid"]
        workers = _workers(server)
        assert len(workers) == 2 and all(w["local"] and w["alive"] for w in workers)
    finally:
        first_flag.touch()
        second_flag.touch()
    done = [server.wait_job(job["job_id"]) for job in (first, second)]
    assert [job["status"] for job in done] == ["completed", "completed"]
    assert {job["worker"] for job in done} == {one["id"], other["id"]}


def test_a_killed_worker_process_costs_its_job_nothing(server: Server) -> None:
    job, flag = _held(server, seed=3)
    worker = _running_on(server, job["job_id"])
    os.kill(worker["pid"], signal.SIGKILL)
    # Not the job's fault: it goes back to the queue and runs again, on whichever worker is free.
    while (again := server.get(f"/api/v1/generate/{job['job_id']}").json())["attempts"] < 2:
        assert again["status"] in ("running", "queued"), again
        time.sleep(0.05)
    flag.touch()
    done = server.wait_job(job["job_id"])
    assert done["status"] == "completed" and done["attempts"] == 2, done
    assert server.get(done["images"][0]["url"]).status_code == 200
    [after] = [w for w in _workers(server) if w["id"] == worker["id"]]
    assert after["crashes"] == worker["crashes"] + 1  # the killed one, counted once


def test_a_job_that_kills_two_workers_fails(server: Server) -> None:
    crashed = server.submit(prompt=CRASH_PREFIX + "abort", seed=4, wait=True)
    assert crashed["status"] == "failed" and crashed["error"]["code"] == "worker_crashed"
    assert crashed["attempts"] == 2
    assert server.submit(seed=5, wait=True)["status"] == "completed"  # both serve on


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--workers", "0"), "workers"),
        (("--gpus", "0,x"), "gpus"),
        (("--gpus", "0,0"), "gpus"),
        (("--gpus", "0,1", "--workers", "3"), "workers"),
        (("--worker-id", "a b"), "worker_id"),
        (("--lease-seconds", "0.5"), "lease_seconds"),
    ],
)
def test_bad_worker_settings_are_refused_by_name(args: tuple[str, ...], field: str, capsys) -> None:
    assert cli.main(["serve", *args, "--print-config"]) == 2
    assert f"{field}:" in capsys.readouterr().err
