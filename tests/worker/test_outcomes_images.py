"""A finished job's files and the image store (sdrest.worker.outcomes with real stores): they are
stored before the job is completed, a worker that lost its job stores nothing over the holder's
files, and files that cannot be stored fail the job without leaving any behind."""

from __future__ import annotations

import collections
from pathlib import Path

from PIL import Image

from sdrest.images.files import FileImageStore
from sdrest.images.pgimages import PgImageStore
from sdrest.jobs import EventBus, JobStatus, SqliteJobStore
from sdrest.jobs.pgstore import PostgresJobStore
from sdrest.outputs import write_image
from sdrest.worker.outcomes import JobOutcomes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _write(staging: Path, job_id: str, colour: tuple[int, int, int]) -> bytes:
    """What the worker process writes for the job: one image and its sidecar; the image's bytes."""
    path = write_image(Image.new("RGB", (8, 8), colour), staging / job_id, "0", infotext="x", metadata={})
    return path.read_bytes()


def _done(job_id: str) -> dict:
    return {"type": "done", "result": {"images": [{"index": 0, "file": f"{job_id}/0.png"}], "timings": {}}}


def test_a_worker_that_lost_its_job_stores_nothing_over_the_holders_files(postgres_url: str, tmp_path: Path) -> None:
    clock = Clock()
    with PostgresJobStore(postgres_url, clock=clock) as store:
        bus = EventBus(store)
        images = {w: PgImageStore(store.database, staging=tmp_path / w) for w in ("a", "b")}
        outcomes = {w: JobOutcomes(store, bus, images[w], collections.Counter(), w) for w in ("a", "b")}
        for worker in ("a", "b"):
            store.register_worker(worker, worker, {}, lease=10)
        job = store.create("txt2img", {})
        assert store.claim_next(worker="a", lease=10).id == job.id
        clock.now += 11  # a is cut off: its lease runs out and b takes the job
        store.heartbeat("b", "b", {}, lease=10)
        assert [j.id for j in store.expire_leases(sparing="b")] == [job.id]
        claimed = store.claim_next(worker="b", lease=10)
        assert claimed.id == job.id

        held = _write(tmp_path / "b", job.id, (0, 200, 0))
        assert outcomes["b"].apply(claimed, _done(job.id))
        assert store.get(job.id).status is JobStatus.COMPLETED

        _write(tmp_path / "a", job.id, (200, 0, 0))  # a finishes late
        assert outcomes["a"].apply(job, _done(job.id))
        stored = images["b"].open(job.id, "0.png")
        assert stored is not None and stored.read() == held  # b's image, not a's
        assert images["b"].names(job.id) == ["0.json", "0.png"]
        assert not (tmp_path / "a" / job.id).exists() and not (tmp_path / "b" / job.id).exists()
        bus.close()


def test_files_that_cannot_be_stored_fail_the_job_and_leave_nothing(tmp_path: Path) -> None:
    class FullStore(FileImageStore):
        def publish(self, job_id: str) -> None:
            raise OSError(28, "No space left on device")

    with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
        bus = EventBus(store)
        images = FullStore(tmp_path / "outputs")
        outcomes = JobOutcomes(store, bus, images, collections.Counter())
        job = store.create("txt2img", {})
        assert store.claim_next() is not None
        _write(tmp_path / "outputs", job.id, (0, 0, 200))
        assert outcomes.apply(job, _done(job.id))
        failed = store.get(job.id)
        assert failed.status is JobStatus.FAILED and failed.error["code"] == "images_not_stored"
        assert "No space left on device" in failed.error["message"]
        assert images.names(job.id) == [] and not (tmp_path / "outputs" / job.id).exists()
        bus.close()
