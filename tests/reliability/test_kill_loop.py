"""kill -9, twenty times, at random moments with jobs queued and running: ten times the whole
server, ten times only its worker. After every restart each job is accounted for, no image is
truncated, and the database passes ``PRAGMA integrity_check``; in the end every job has
completed, or failed with a reason."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from PIL import Image

from server_helpers import FAST, Server, link_models

pytestmark = pytest.mark.slow

KILLS = 20
SEED = 20261129
FINISHED = ("completed", "failed", "cancelled")


def _integrity(database: Path) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _check_images(outputs: Path) -> int:
    """Decode every image file in full; the number checked."""
    count = 0
    for path in outputs.rglob("*.png"):
        if path.name.startswith("."):
            continue  # a temporary file cut off mid-write: never renamed into place
        with Image.open(path) as image:
            image.load()
        count += 1
    return count


def _account(server: Server, job_ids: list[str]) -> dict[str, int]:
    """Every job is known and in a legal state; a failed one says why."""
    states: dict[str, int] = {}
    for job_id in job_ids:
        response = server.get(f"/api/v1/generate/{job_id}")
        assert response.status_code == 200, f"job {job_id} was lost"
        job = response.json()
        assert job["status"] in ("queued", "running", *FINISHED)
        if job["status"] == "failed":
            assert job["error"]["code"] in ("interrupted", "worker_crashed") and job["error"]["message"], job
        if job["status"] == "completed":
            assert len(job["images"]) == 1
        states[job["status"]] = states.get(job["status"], 0) + 1
    return states


def test_twenty_kill_9_at_random_moments_lose_nothing(models, tmp_path) -> None:
    rng = random.Random(SEED)
    server = Server(tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1").start()
    database, outputs = server.data_dir / "jobs.sqlite3", server.data_dir / "outputs"
    job_ids: list[str] = []
    try:
        for round_ in range(KILLS):
            for _ in range(2):  # one to be running, one queued behind it
                job_ids.append(server.submit(**{**FAST, "seed": rng.randrange(10**6)})["job_id"])
            time.sleep(rng.uniform(0.0, 2.0))
            if round_ % 2 == 0:
                server.kill9()
                server.start()
            else:
                pid = server.status()["worker"]["pid"]
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass  # it was being replaced already
            assert _integrity(database) == "ok"
            _account(server, job_ids)
            _check_images(outputs)

        deadline = time.monotonic() + 1800  # a bound for a hung server, far above the need
        while time.monotonic() < deadline:
            states = _account(server, job_ids)
            if set(states) <= set(FINISHED):
                break
            time.sleep(0.5)
        states = _account(server, job_ids)
        assert set(states) <= set(FINISHED), states
        images = _check_images(outputs)
        assert images == states.get("completed", 0)
        assert _integrity(database) == "ok"
        print(
            f"\nkill -9 loop: {KILLS} kills, {len(job_ids)} jobs, {states}, {images} images decoded, 0 lost, 0 corrupt"
        )
    finally:
        server.stop()
