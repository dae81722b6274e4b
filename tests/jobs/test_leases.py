"""Leases and workers, on both backends: a claimed job is held by a worker for as long as the
worker renews its lease; a worker that vanishes loses its jobs to the others when the lease runs
out, and a job cut off too often fails as "worker_lost". Worker ids are unique among live
workers; a stop asked on one node reaches the worker at its next heartbeat."""

from __future__ import annotations

import threading

import pytest

from postgres_helpers import Backend
from sdrest.jobs import JobStatus, JobStore, WorkerIdInUse


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(backend: Backend, clock: Clock):
    store = backend.open(clock=clock)
    try:
        yield store
    finally:
        store.close()


def test_a_claim_records_its_worker_and_a_lease_that_heartbeats_renew(timed: JobStore, clock: Clock) -> None:
    job = timed.create("txt2img", {})
    timed.register_worker("gpu-a", "one", {"host": "a"}, lease=10)
    claimed = timed.claim_next(worker="gpu-a", lease=10)
    assert claimed.id == job.id and claimed.worker == "gpu-a" and timed.get(job.id).worker == "gpu-a"

    for _ in range(5):  # 40 s in all, four times the lease: each heartbeat extends it
        clock.now += 8
        assert timed.heartbeat("gpu-a", "one", {"host": "a"}, lease=10) == {job.id: None}
        assert timed.expire_leases() == []
    assert timed.get(job.id).status is JobStatus.RUNNING

    clock.now += 11  # no heartbeat for longer than the lease
    (lost,) = timed.expire_leases()
    assert lost.id == job.id and lost.status is JobStatus.QUEUED and lost.worker is None
    assert lost.interruptions == 1 and lost.attempts == 1
    event = timed.events_after(0)[-1]
    assert (event.type, event.data["reason"]) == ("queued", "worker_lost")
    assert timed.heartbeat("gpu-a", "one", {}, lease=10) == {}  # the job is no longer its own


def test_a_job_whose_worker_vanishes_too_often_fails_as_worker_lost(timed: JobStore, clock: Clock) -> None:
    job = timed.create("txt2img", {})
    later = timed.create("txt2img", {})
    for lost in (1, 2):
        assert timed.claim_next(worker=f"w{lost}", lease=5).id == job.id
        clock.now += 6
        (requeued,) = timed.expire_leases(max_interruptions=2)
        assert requeued.status is JobStatus.QUEUED and requeued.interruptions == lost
        assert timed.queued_ids() == [job.id, later.id]  # back at its place
    assert timed.claim_next(worker="w3", lease=5).id == job.id
    clock.now += 6
    (failed,) = timed.expire_leases(max_interruptions=2)
    assert failed.status is JobStatus.FAILED and failed.error["code"] == "worker_lost"
    assert failed.error["worker"] == "w3" and failed.error["interruptions"] == 3


def test_a_worker_never_expires_its_own_jobs(timed: JobStore, clock: Clock) -> None:
    mine = timed.create("txt2img", {})
    theirs = timed.create("txt2img", {})
    timed.claim_next(worker="me", lease=5)
    timed.claim_next(worker="them", lease=5)
    clock.now += 6  # a stalled machine: both leases ran out before either heartbeat
    (lost,) = timed.expire_leases(sparing="me")  # the caller is alive: its job stays its own
    assert lost.id == theirs.id and timed.get(mine.id).status is JobStatus.RUNNING
    assert [job.id for job in timed.expire_leases(sparing="them")] == [mine.id]


def test_a_job_claimed_without_a_lease_never_expires(timed: JobStore, clock: Clock) -> None:
    job = timed.create("txt2img", {})
    timed.claim_next()
    clock.now += 10**6
    assert timed.expire_leases() == [] and timed.get(job.id).status is JobStatus.RUNNING


def test_a_worker_that_lost_its_job_cannot_finish_it(timed: JobStore, clock: Clock) -> None:
    job = timed.create("txt2img", {})
    timed.claim_next(worker="slow", lease=5)
    clock.now += 6
    timed.expire_leases()
    assert timed.claim_next(worker="fast", lease=5).id == job.id

    # The first worker comes back and reports: nothing it says about the job counts now.
    assert timed.complete(job.id, {"images": ["late.png"]}, {}, worker="slow") is None
    assert timed.fail(job.id, {"code": "x", "message": "late"}, worker="slow") is None
    assert timed.requeue(job.id, worker="slow") is False
    assert timed.get(job.id).status is JobStatus.RUNNING

    done = timed.complete(job.id, {"images": ["a.png"]}, {}, worker="fast")
    assert done.status is JobStatus.COMPLETED and done.result == {"images": ["a.png"]} and done.worker == "fast"
    assert [e.type for e in timed.events_after(0, job_id=job.id)].count("completed") == 1


def test_a_restarted_worker_settles_only_its_own_jobs(store: JobStore) -> None:
    mine = store.create("txt2img", {})
    theirs = store.create("txt2img", {})
    store.claim_next(worker="gpu-a", lease=30)
    store.claim_next(worker="gpu-b", lease=30)
    (recovered,) = store.recover_interrupted(worker="gpu-a")
    assert recovered.id == mine.id and recovered.status is JobStatus.QUEUED
    assert store.get(theirs.id).status is JobStatus.RUNNING and store.get(theirs.id).worker == "gpu-b"


def test_a_worker_id_cannot_be_used_by_two_live_processes(timed: JobStore, clock: Clock) -> None:
    timed.register_worker("gpu-a", "first", {"host": "box1"}, lease=10)
    with pytest.raises(WorkerIdInUse, match="box1"):
        timed.register_worker("gpu-a", "second", {"host": "box2"}, lease=10)
    timed.register_worker("gpu-a", "first", {"host": "box1"}, lease=10)  # the same process again: fine

    clock.now += 11  # the first one stopped heartbeating: its id is free again
    timed.register_worker("gpu-a", "second", {"host": "box2"}, lease=10)
    [worker] = timed.workers()
    assert (worker.id, worker.instance, worker.info) == ("gpu-a", "second", {"host": "box2"})
    assert timed.heartbeat("gpu-a", "first", {}, lease=10) is None  # the old instance is out

    # A process known to be dead (the worker's own restart finds its pid gone) is replaced at once.
    timed.register_worker("gpu-a", "third", {}, lease=10, replace="second")
    assert [w.instance for w in timed.workers()] == ["third"]
    with pytest.raises(WorkerIdInUse):
        timed.register_worker("gpu-a", "fourth", {}, lease=10, replace="second")


def test_concurrent_registrations_of_one_id_admit_exactly_one(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(stores))

    def register(index: int) -> None:
        barrier.wait()
        try:
            stores[index].register_worker("gpu-a", f"instance-{index}", {}, lease=60)
            outcomes.append("admitted")
        except WorkerIdInUse:
            outcomes.append("refused")

    threads = [threading.Thread(target=register, args=(index,)) for index in range(len(stores))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert sorted(outcomes) == ["admitted", "refused", "refused", "refused"]


def test_workers_are_listed_with_their_heartbeats_and_leave_when_they_stop(timed: JobStore, clock: Clock) -> None:
    timed.register_worker("b", "i-b", {"host": "box2"}, lease=10)
    timed.register_worker("a", "i-a", {"host": "box1"}, lease=10)
    clock.now += 3
    timed.heartbeat("a", "i-a", {"host": "box1", "resident": ["m.safetensors"]}, lease=10)
    first, second = timed.workers()
    assert (first.id, first.info["resident"], first.heartbeat_at, first.started_at) == (
        "a",
        ["m.safetensors"],
        clock.now,
        clock.now - 3,
    )
    assert (second.id, second.heartbeat_at) == ("b", clock.now - 3)
    timed.unregister_worker("a", "someone-else")  # only its own registration
    assert [w.id for w in timed.workers()] == ["a", "b"]
    timed.unregister_worker("a", "i-a")
    assert [w.id for w in timed.workers()] == ["b"]


def test_a_stop_request_reaches_the_worker_at_its_heartbeat(store: JobStore) -> None:
    job = store.create("txt2img", {})
    other = store.create("txt2img", {})
    store.register_worker("w", "i", {}, lease=10)
    store.claim_next(worker="w", lease=10)
    assert store.heartbeat("w", "i", {}, lease=10) == {job.id: None}
    assert store.request_stop(job.id, "new_latents") is True
    assert store.heartbeat("w", "i", {}, lease=10) == {job.id: "new_latents"}
    assert store.request_stop(other.id, "new_latents") is False  # queued, not running
    store.cancel(job.id)
    assert store.heartbeat("w", "i", {}, lease=10) == {}  # cancelled: no longer among its jobs


@pytest.mark.parametrize("lease", [0, -1, True, "10", float("nan")])
def test_bad_leases_are_refused(store: JobStore, lease: object) -> None:
    store.create("txt2img", {})
    with pytest.raises(ValueError, match="lease"):
        store.claim_next(worker="w", lease=lease)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease"):
        store.register_worker("w", "i", {}, lease=lease)  # type: ignore[arg-type]
    assert store.queued_ids() != []  # nothing was claimed
