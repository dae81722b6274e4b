"""A database outage under running nodes (issue 15), with real servers and a real PostgreSQL.

The PostgreSQL server is shut down under a running API node: every route answers 503 in the
API's error shape (an A1111 route in its own) with ``Retry-After``, naming the cause but neither
the database host nor the password, and the outage is logged once. Started again, the same node
answers 200 without a restart. Under workers: a job that finished during an outage longer than
its lease completes once, on the worker that ran it (neither lost nor run again), and the workers
carry on. The SQLite store's counterpart: its write lock held by another process beyond
``--store-wait-seconds`` is a 503 too.

These tests have a PostgreSQL server of their own (they stop it), each test its own database.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from harness import link_models
from sdrest.jobs import SqliteJobStore
from server_helpers import FAST, HOLD_PREFIX, Server, worker_nodes

if TYPE_CHECKING:
    from postgres_helpers import PostgresCluster

PASSWORD = "outage-s3cret"
#: The workers' lease: the outage of the job test lasts longer than this.
LEASE = 6.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    from postgres_helpers import PostgresCluster  # psycopg only where PostgreSQL is tested

    postgres = PostgresCluster()
    try:
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture
def database(cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database's URL, with a password (the cluster trusts loopback, so any will do:
    the tests check that it never shows)."""
    url = cluster.create_database()
    try:
        yield url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    finally:
        cluster.drop_database(url)


@pytest.fixture
def outage(cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    """The cluster, started again at the end of the test whatever happened."""
    try:
        yield cluster
    finally:
        if not (cluster.data / "postmaster.pid").exists():
            cluster.resume()


def _until(check, what: str, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)
    return result


def _assert_unavailable(response: requests.Response) -> str:
    """A 503 for the job store's database, with Retry-After; its message."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert PASSWORD not in response.text and "127.0.0.1" not in response.text
    return response.text


def test_an_api_node_answers_503_while_postgresql_is_down_and_recovers_alone(
    outage: PostgresCluster, database: str, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    node = Server(tmp_path / "api", tmp_path / "models", "--no-worker", "--store", database)  # default wait
    node.root.mkdir()
    node.start(wait_for_worker=False)
    try:
        assert node.get("/api/v1/queue").status_code == 200
        outage.pause()

        body = node.get("/api/v1/queue").json()
        assert body == {
            "error": {
                "code": "store_unavailable",
                "message": "the job store is unavailable: its database does not answer; try again shortly",
                "field": None,
            }
        }
        _assert_unavailable(node.get("/api/v1/queue"))
        _assert_unavailable(node.post("/api/v1/generate", json={**FAST, "prompt": "a lighthouse", "wait": False}))
        _assert_unavailable(node.get("/api/v1/status"))
        a1111 = node.post("/sdapi/v1/txt2img", json={"prompt": "a lighthouse", "steps": 1, "width": 64, "height": 64})
        _assert_unavailable(a1111)
        assert a1111.json()["error"] == "store_unavailable"  # A1111's shape: {"error": code, "detail": ...}
        assert "job store is unavailable" in a1111.json()["detail"]

        outage.resume()
        _until(lambda: node.get("/api/v1/queue").status_code == 200, "the node to answer again")
        assert node.get("/api/v1/status").status_code == 200
        assert node.process is not None and node.process.poll() is None  # never restarted
    finally:
        node.stop()
    log = node.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert PASSWORD not in log
    assert log.count("the job store at postgresql://postgres:***@") >= 2, log[-3000:]
    assert sum("the job store at" in line and "is unavailable (" in line for line in log.splitlines()) == 1
    assert sum("the job store at" in line and "is available again" in line for line in log.splitlines()) == 1


def test_a_job_finished_during_an_outage_longer_than_its_lease_completes_once(
    outage: PostgresCluster, database: str, models, tmp_path: Path
) -> None:
    models_dir = link_models(models, tmp_path / "models")
    shared = ["--store", database, "--output-dir", str(tmp_path / "images")]
    node = Server(tmp_path / "api", models_dir, "--no-worker", "--model", "sd1", *shared)
    workers = worker_nodes(tmp_path, models_dir, 2, "--lease-seconds", str(LEASE), "--model", "sd1", *shared)
    node.root.mkdir()
    node.start(wait_for_worker=False)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_live(node)
        release = tmp_path / "release"
        job_id = node.submit(prompt=HOLD_PREFIX + str(release), seed=1)["job_id"]
        holder_id = node.wait_job(job_id, until=("running",))["worker"]
        [holder] = [w for w in workers if w.name == holder_id]
        [other] = [w for w in workers if w.name != holder_id]

        outage.pause()
        down_since = time.monotonic()
        release.touch()  # the job finishes now, with the database down
        _until(lambda: f"job {job_id}: its completion waits for the job store" in holder.log_text(), "the job's end")
        while time.monotonic() < down_since + LEASE + 1:  # the outage outlasts the job's lease
            time.sleep(0.1)
        # The holder is slower to come back than the other worker (paused for a while), which
        # would settle the lapsed lease at its first heartbeat after the outage, were it not for
        # its grace after an outage: a lease's time for every worker to renew its own.
        assert holder.process is not None
        holder.process.send_signal(signal.SIGSTOP)
        try:
            outage.resume()
            _until(lambda: "is available again" in other.log_text(), "the other worker to reach the store")
            time.sleep(LEASE / 3 + 1)  # at least one heartbeat of the other worker since
            meanwhile = node.get(f"/api/v1/generate/{job_id}").json()
            assert (meanwhile["status"], meanwhile["worker"], meanwhile["attempts"]) == ("running", holder_id, 1)
        finally:
            holder.process.send_signal(signal.SIGCONT)

        done = _until(
            lambda: (
                (r := node.get(f"/api/v1/generate/{job_id}")).status_code == 200
                and r.json()["status"] in ("completed", "failed", "cancelled")
                and r.json()
            ),
            "the job to end",
        )
        assert done["status"] == "completed", done["error"]
        assert done["attempts"] == 1 and done["worker"] == holder_id, done  # it ran once, on its worker
        assert node.get(done["images"][0]["url"]).status_code == 200
        # The workers carry on: the next job runs as usual.
        after = node.wait_job(node.submit(prompt="a lighthouse", seed=2)["job_id"])
        assert after["status"] == "completed", after["error"]
    finally:
        for worker in workers:
            worker.stop()
        node.stop()
    for worker in workers:
        log = worker.log_text()
        assert PASSWORD not in log
        assert "stopped renewing the lease" not in log, log[-3000:]
        assert sum("the job store at" in line and "is unavailable (" in line for line in log.splitlines()) <= 1
    assert f"job {job_id}: its completion is stored" in holder.log_text()


def test_a_sqlite_store_locked_beyond_the_wait_answers_503(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    node = Server(tmp_path / "api", tmp_path / "models", "--no-worker", "--store-wait-seconds", "0.2")
    with SqliteJobStore(node.data_dir / "jobs.sqlite3") as store:  # a queued job to cancel
        job = store.create("txt2img", {"prompt": "a lighthouse"})
    node.start(wait_for_worker=False)
    blocker = sqlite3.connect(node.data_dir / "jobs.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        locked = node.delete(f"/api/v1/generate/{job.id}")
        _assert_unavailable(locked)
        assert locked.json()["error"]["code"] == "store_unavailable"
        assert locked.json()["error"]["message"] == (
            "the job store is unavailable: its database is locked by another process; try again shortly"
        )
        assert node.get(f"/api/v1/generate/{job.id}").json()["status"] == "queued"  # readers go on (WAL)
        blocker.execute("COMMIT")
        cancelled = node.delete(f"/api/v1/generate/{job.id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    finally:
        blocker.close()
        node.stop()
    assert "Traceback" not in node.log_text()
