"""Background writes: once the library is done with a job, the next job runs while its images are
written, and nothing is lost or left behind: the held job completes with its images, a job
cancelled or cut off by a crash while its images are written keeps no outputs folder.

A job with the prompt ``HOLD_WRITTEN_PREFIX + <path>`` writes its images, then reports them only
once ``<path>`` exists (tests/hooks/sitecustomize.py), so the tests see the moment between."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdrest.outputs import read_parameters
from server_helpers import CRASH_PREFIX, HOLD_WRITTEN_PREFIX, Server, sd1_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory) -> Iterator[Server]:
    yield from sd1_server(models, tmp_path_factory, "background-writes")


def _job(server: Server, job_id: str) -> dict[str, Any]:
    return server.get(f"/api/v1/generate/{job_id}").json()


def _held_written(server: Server, seed: int) -> tuple[dict[str, Any], Path, Path]:
    """A job whose images are on disk and not reported yet; its release flag and folder."""
    flag = server.root / f"written-{uuid.uuid4().hex}"
    job = server.submit(prompt=HOLD_WRITTEN_PREFIX + str(flag), seed=seed)
    folder = server.data_dir / "outputs" / job["job_id"]
    server.wait_job(job["job_id"], until=("running",))
    while not any(folder.glob("*.png")):  # the writer wrote it and now waits for the flag
        assert _job(server, job["job_id"])["status"] == "running"
        time.sleep(0.05)
    return job, flag, folder


def _wait_stage(server: Server, job_id: str, stage: str) -> dict[str, Any]:
    while (job := _job(server, job_id))["progress"]["stage"] != stage:
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    return job


def test_the_next_job_runs_while_the_images_are_written(server: Server) -> None:
    held, flag, folder = _held_written(server, seed=1)
    try:
        after = server.submit(seed=2)
        # Loaded, encoded, sampled and decoded while the held job's images wait to be reported;
        # its own images are written after those (one writer, in order).
        _wait_stage(server, after["job_id"], "writing")
        still = _job(server, held["job_id"])
        assert still["status"] == "running" and still["progress"]["stage"] == "writing"
    finally:
        flag.touch()
    done = server.wait_job(held["job_id"])
    assert done["status"] == "completed", done["error"]
    [image] = done["images"]
    assert server.get(image["url"]).status_code == 200
    [png] = folder.glob("*.png")
    text, metadata = read_parameters(png)
    assert metadata["job_id"] == held["job_id"] and metadata["seed"] == 1
    assert text.startswith(HOLD_WRITTEN_PREFIX)
    next_done = server.wait_job(after["job_id"])
    assert next_done["status"] == "completed" and "sampling" in next_done["timings"]
    assert server.get(next_done["images"][0]["url"]).status_code == 200


def test_a_job_cancelled_while_its_images_are_written_keeps_none(server: Server) -> None:
    starts = server.status()["worker"]["starts"]
    held, flag, folder = _held_written(server, seed=3)
    try:
        assert server.delete(f"/api/v1/generate/{held['job_id']}").status_code in (200, 202)
        assert server.wait_job(held["job_id"])["status"] == "cancelled"
    finally:
        flag.touch()
    # The writer finishes jobs in order: once the next one is reported, the cancelled one's
    # report came first, and its files went with it.
    after = server.submit(seed=4, wait=True)
    assert after["status"] == "completed"
    assert not folder.exists()
    assert server.status()["worker"]["starts"] == starts  # a cancel while writing kills nothing


def test_a_crash_while_images_are_written_leaves_no_files(server: Server) -> None:
    held, flag, folder = _held_written(server, seed=5)
    try:
        crashed = server.submit(prompt=CRASH_PREFIX + "abort", wait=True)
        assert crashed["status"] == "failed" and crashed["error"]["code"] == "worker_crashed"
        cut_off = server.wait_job(held["job_id"])
        assert cut_off["status"] == "failed" and cut_off["error"]["code"] == "worker_crashed"
        assert not folder.exists()
    finally:
        flag.touch()
    assert server.submit(seed=6, wait=True)["status"] == "completed"  # a fresh worker serves on


def test_without_background_writes_the_next_job_waits_for_the_images(models, tmp_path_factory) -> None:
    # --no-background-writes: the old serial path. While a job's written images wait to be
    # reported, the worker is not free, so the next job stays queued.
    for serial in sd1_server(models, tmp_path_factory, "serial-writes", "--no-background-writes"):
        held, flag, _ = _held_written(serial, seed=1)
        try:
            after = serial.submit(seed=2)
            for _ in range(20):  # a second: ample for the next job to start, were the worker free
                assert _job(serial, after["job_id"])["status"] == "queued"
                assert _job(serial, held["job_id"])["progress"]["stage"] == "writing"
                time.sleep(0.05)
        finally:
            flag.touch()
        assert serial.wait_job(held["job_id"])["status"] == "completed"
        done = serial.wait_job(after["job_id"])
        assert done["status"] == "completed" and serial.get(done["images"][0]["url"]).status_code == 200
