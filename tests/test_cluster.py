"""The cluster on loopback: a real PostgreSQL, 2 API nodes (``sdrest serve --no-worker``) and 3
workers (``sdrest worker``), separate processes sharing the database and nothing else: each node
has its own data and output folder (the images go through the database).

30 jobs for two models go in through both API nodes (3 of them img2img: their init images reach
the workers through the database too). During the run one worker is killed with
kill -9 in the middle of a job, and one API node too. Every job completes; the killed worker's
job is finished by another worker once its lease runs out; every job's events reach an event
stream on the surviving node; no job completes twice; and with model affinity the workers load
each model at most once each.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from helpers import test_image
from server_helpers import Server, WorkerNode, link_models_with_copies, png_base64, sse_events, worker_nodes

pytestmark = pytest.mark.slow

JOBS = 30
MODELS = ("sd1", "sd1b")
WORKERS = 3


class EventLog:
    """An event stream of every job on one node, read in a thread from the first event on."""

    def __init__(self, node: Server) -> None:
        self.events: list[dict[str, Any]] = []
        self._response = requests.get(
            node.url("/api/v1/events"), headers={"Last-Event-ID": "0"}, stream=True, timeout=(5, 600)
        )
        assert self._response.status_code == 200
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in sse_events(self._response):
                self.events.append(event)
        except (requests.RequestException, AttributeError):
            pass  # closed by close() at the end of the test (urllib3 then reads from None)

    def of(self, job_id: str) -> list[str]:
        return [
            e["event"] for e in self.events if isinstance(e.get("data"), dict) and e["data"].get("job_id") == job_id
        ]

    def close(self) -> None:
        self._response.close()


@pytest.fixture
def cluster(models, tmp_path, postgres_url) -> Iterator[dict[str, Any]]:
    models_dir = link_models_with_copies(models, tmp_path / "models", names=("sd1b",))
    # Each node's data folder (and so its outputs) is its own: nothing but the database is shared.
    store = ["--store", postgres_url]
    apis = [Server(tmp_path / f"api{n}", models_dir, "--no-worker", "--model", "sd1", *store) for n in range(2)]
    workers = worker_nodes(
        tmp_path, models_dir, WORKERS, "--lease-seconds", "10", "--model-overtake-limit", str(JOBS), *store
    )
    try:
        for api in apis:
            api.root.mkdir()
            api.start(wait_for_worker=False)
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_live(apis[1])
        yield {"apis": apis, "workers": workers}
    finally:
        for worker in workers:
            worker.stop()
        for api in apis:
            api.stop()


def test_thirty_jobs_survive_a_killed_worker_and_a_killed_api_node(cluster) -> None:
    first, survivor = cluster["apis"]
    workers: list[WorkerNode] = cluster["workers"]
    stream = EventLog(survivor)
    try:
        init = {"init_image": png_base64(test_image()), "strength": 0.5}
        jobs = [
            (first if n % 2 else survivor).submit(
                model=MODELS[n % len(MODELS)], seed=n, steps=40 if n == 0 else 2, **(init if n % 10 == 5 else {})
            )["job_id"]
            for n in range(JOBS)
        ]
        # kill -9 the worker running the long job, in the middle of it, and then one API node.
        while (long := survivor.get(f"/api/v1/generate/{jobs[0]}").json())["progress"]["stage"] != "sampling":
            assert long["status"] in ("queued", "running"), long
            time.sleep(0.02)
        [victim] = [worker for worker in workers if worker.name == long["worker"]]
        victim.stop(signal.SIGKILL)
        first.kill9()

        done = [survivor.wait_job(job_id, timeout=600) for job_id in jobs]
        assert [job["status"] for job in done] == ["completed"] * JOBS, [j["error"] for j in done]
        deadline_events = time.monotonic() + 60
        while any(stream.of(job_id).count("completed") < 1 for job_id in jobs):
            assert time.monotonic() < deadline_events, "events missing on the surviving node"
            time.sleep(0.1)
    finally:
        stream.close()

    by_id = {job["job_id"]: job for job in done}
    for job_id in jobs:
        kinds = stream.of(job_id)
        assert kinds[0] == "queued" and "started" in kinds, kinds
        assert kinds.count("completed") == 1, kinds  # no job ran twice to completion
    lost = by_id[jobs[0]]
    assert lost["attempts"] == 2 and lost["worker"] != victim.name, lost
    assert "worker_lost" in json.dumps([e["data"] for e in stream.events if e["data"].get("job_id") == lost["job_id"]])
    loads = Counter((job["worker"], job["model"]) for job in done if "loading" in job["timings"])
    assert sum(loads.values()) <= WORKERS * len(MODELS), loads
    for job in done:
        assert survivor.get(job["images"][0]["url"]).status_code == 200
    assert [job["mode"] for job in done].count("img2img") == 3
    retries = sum(job["attempts"] - 1 for job in done)
    print(
        f"cluster: {JOBS} jobs completed, {sum(loads.values())} model loads ({dict(loads)}), {retries} retries, 0 lost"
    )
