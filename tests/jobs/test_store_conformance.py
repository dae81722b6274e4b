"""The job store's semantics, one suite for both backends (SQLite and a real PostgreSQL, see
conftest.py): queue order, claims under concurrency, state transitions, events, durability."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

import sdrest.jobs
from postgres_helpers import Backend
from sdrest.jobs import Event, JobStatus, JobStore, UnknownJobError


class Clock:
    """A settable clock, so timestamps and age-based purges are deterministic."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_job(store: JobStore, job_id: str) -> None:
    """Claim the next job, which must be ``job_id`` (state set-up that checks the queue too)."""
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == job_id


# -- create / get / list ------------------------------------------------------------------


def test_create_and_get_round_trip(store: JobStore) -> None:
    params = {"prompt": "a lighthouse", "steps": 20, "nested": {"list": [1, 2.5, None]}}
    job = store.create("txt2img", params, owner="alice", priority=3)

    assert uuid.UUID(job.id).version == 4
    assert job.status is JobStatus.QUEUED and not job.finished
    assert (job.kind, job.owner, job.priority, job.attempts) == ("txt2img", "alice", 3, 0)
    assert job.started_at is None and job.finished_at is None
    assert job.error is None and job.result is None
    assert job.progress == {"step": 0, "steps": 0, "stage": None}

    fetched = store.get(job.id)
    assert fetched == job
    assert fetched.params == params
    assert json.loads(json.dumps(fetched.to_dict()))["status"] == "queued"
    assert store.get(str(uuid.uuid4())) is None

    second = store.create("img2img", {})
    assert second.seq > job.seq

    events = store.events_after(0)
    assert [(e.type, e.job_id, e.owner) for e in events] == [("queued", job.id, "alice"), ("queued", second.id, None)]


def test_create_rejects_bad_input_and_stores_nothing(store: JobStore) -> None:
    with pytest.raises(ValueError):
        store.create("txt2img", {"cfg": math.nan})  # not JSON
    with pytest.raises(TypeError):
        store.create("txt2img", {"image": object()})
    with pytest.raises(ValueError):
        store.create("", {})
    with pytest.raises(TypeError):
        store.create("txt2img", {}, priority="high")  # type: ignore[arg-type]
    assert store.list() == ([], 0)
    assert store.last_event_id() == 0


def test_list_filters_pagination_and_totals(store: JobStore) -> None:
    jobs = [
        store.create("txt2img" if i % 2 == 0 else "upscale", {"i": i}, owner="alice" if i < 6 else "bob")
        for i in range(10)
    ]
    run_job(store, jobs[0].id)
    store.complete(jobs[0].id, {"images": []}, {})
    store.cancel(jobs[1].id)

    page, total = store.list(limit=3)
    assert total == 10
    assert [job.id for job in page] == [jobs[9].id, jobs[8].id, jobs[7].id]
    page, total = store.list(limit=3, offset=8)
    assert total == 10 and [job.id for job in page] == [jobs[1].id, jobs[0].id]
    page, _ = store.list(limit=4, newest_first=False)
    assert [job.id for job in page] == [job.id for job in jobs[:4]]
    page, total = store.list(limit=None)
    assert total == 10 and len(page) == 10

    page, total = store.list(owner="bob")
    assert total == 4 and {job.owner for job in page} == {"bob"}
    page, total = store.list(owner="alice", kind="txt2img")
    assert total == 3 and [job.id for job in page] == [jobs[4].id, jobs[2].id, jobs[0].id]
    page, total = store.list(statuses=[JobStatus.COMPLETED, "cancelled"])
    assert total == 2 and {job.id for job in page} == {jobs[0].id, jobs[1].id}
    page, total = store.list(statuses={JobStatus.QUEUED}, owner="alice", limit=2)
    assert total == 4 and len(page) == 2  # total counts all matches, not the page
    assert store.list(statuses=[]) == ([], 0)
    assert store.list(owner="nobody") == ([], 0)
    with pytest.raises(ValueError):
        store.list(statuses=["bogus"])
    with pytest.raises(ValueError):
        store.list(offset=-1)


def test_priority_first_then_fifo(store: JobStore) -> None:
    low1 = store.create("txt2img", {}, priority=0)
    high1 = store.create("txt2img", {}, priority=5)
    low2 = store.create("txt2img", {}, priority=0)
    high2 = store.create("txt2img", {}, priority=5)
    negative = store.create("txt2img", {}, priority=-1)
    expected = [high1.id, high2.id, low1.id, low2.id, negative.id]

    assert store.queued_ids() == expected
    claimed = [store.claim_next() for _ in range(5)]
    assert [job.id for job in claimed] == expected
    assert store.claim_next() is None


def test_queue_positions(store: JobStore) -> None:
    a = store.create("txt2img", {})
    b = store.create("txt2img", {})
    urgent = store.create("txt2img", {}, priority=1)
    assert [store.queue_position(job.id) for job in (urgent, a, b)] == [0, 1, 2]

    run_job(store, urgent.id)
    assert store.queue_position(urgent.id) is None  # running, not queued
    assert [store.queue_position(a.id), store.queue_position(b.id)] == [0, 1]
    store.cancel(a.id)
    assert store.queue_position(a.id) is None
    assert store.queue_position(b.id) == 0
    assert store.queue_position("no-such-job") is None


# -- concurrency --------------------------------------------------------------------------


def _claim_all(stores: list[JobStore], threads_per_store: int, loaded: set[str] | None = None) -> list[str]:
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores) * threads_per_store)

    def worker(job_store: JobStore) -> None:
        start.wait()
        mine = []
        while (job := job_store.claim_next(loaded=loaded, overtake_limit=2)) is not None:
            assert job.status is JobStatus.RUNNING
            mine.append(job.id)
        with lock:
            claimed.extend(mine)

    threads = [
        threading.Thread(target=worker, args=(job_store,)) for job_store in stores for _ in range(threads_per_store)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    return claimed


def test_claim_next_is_atomic_across_threads(store: JobStore) -> None:
    ids = {store.create("txt2img", {"n": n}).id for n in range(200)}
    claimed = _claim_all([store], threads_per_store=8)
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert set(claimed) == ids
    assert store.counts()["running"] == 200
    assert all(job.attempts == 1 for job in store.list(limit=None)[0])
    assert len([e for e in store.events_after(0, limit=10_000) if e.type == "started"]) == 200


def test_claim_next_is_atomic_across_connections(backend: Backend) -> None:
    """Two stores on one database (as two processes or machines would be), each with loaded
    models (the model-aware choice): the database's locks decide."""
    stores = [backend.open() for _ in range(2)]
    try:
        ids = {stores[0].create("txt2img", {"model_path": f"/m/{n % 3}"}).id for n in range(100)}
        claimed = _claim_all(stores, threads_per_store=3, loaded={"/m/1"})
        assert len(claimed) == len(set(claimed)) and set(claimed) == ids
    finally:
        for job_store in stores:
            job_store.close()


def test_concurrent_creates_are_all_accounted_for(store: JobStore) -> None:
    created: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def worker(n: int) -> None:
        start.wait()
        job = store.create("txt2img", {"n": n}, owner=f"user{n % 5}")
        with lock:
            created.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    jobs, total = store.list(limit=None)
    assert total == 50 and len(created) == 50
    assert {job.id for job in jobs} == set(created)
    assert len({job.seq for job in jobs}) == 50
    assert sorted(job.params["n"] for job in jobs) == list(range(50))
    assert len(store.queued_ids()) == 50
    events = store.events_after(0)
    assert len(events) == 50 and {e.job_id for e in events} == set(created)


# -- state transitions --------------------------------------------------------------------


def test_cancel_queued_running_finished_and_unknown(store: JobStore) -> None:
    running = store.create("txt2img", {})
    queued = store.create("txt2img", {})
    run_job(store, running.id)

    before = store.cancel(queued.id)
    assert before is not None and before.status is JobStatus.QUEUED
    after = store.get(queued.id)
    assert after.status is JobStatus.CANCELLED and after.finished_at is not None

    before = store.cancel(running.id)
    assert before is not None and before.status is JobStatus.RUNNING  # caller must stop the worker
    assert store.get(running.id).status is JobStatus.CANCELLED

    assert store.cancel(running.id) is None  # already finished
    assert store.cancel(str(uuid.uuid4())) is None
    assert store.queued_ids() == [] and store.claim_next() is None
    cancelled = [e for e in store.events_after(0) if e.type == "cancelled"]
    assert [(e.job_id, e.data["previous_status"]) for e in cancelled] == [
        (queued.id, "queued"),
        (running.id, "running"),
    ]


def test_complete_and_fail_after_cancel_return_none(store: JobStore) -> None:
    first = store.create("txt2img", {})
    second = store.create("txt2img", {})
    run_job(store, first.id)
    run_job(store, second.id)
    store.cancel(first.id)
    store.cancel(second.id)

    assert store.complete(first.id, {"images": ["x.png"]}, {"sampling": 1.0}) is None
    assert store.fail(second.id, {"code": "oom", "message": "out of memory"}) is None
    for job_id in (first.id, second.id):
        job = store.get(job_id)
        assert job.status is JobStatus.CANCELLED and job.result is None and job.error is None


def test_complete_and_fail_record_results(store: JobStore) -> None:
    clock_job = store.create("txt2img", {})
    failing = store.create("txt2img", {})
    queued = store.create("txt2img", {})
    run_job(store, clock_job.id)
    run_job(store, failing.id)

    done = store.complete(clock_job.id, {"images": ["a.png"], "seeds": [42]}, {"sampling": 2.5, "decoding": 0.5})
    assert done.status is JobStatus.COMPLETED
    assert done.result == {"images": ["a.png"], "seeds": [42]}
    assert done.timings == {"sampling": 2.5, "decoding": 0.5}
    assert done.finished_at >= done.started_at
    assert store.get(clock_job.id) == done
    assert store.complete(clock_job.id, {}, {}) is None  # not running any more

    with pytest.raises(ValueError):
        store.fail(failing.id, {"message": "no code"})
    error = {"code": "native", "message": "sampling failed", "log": ["line 1", "line 2"]}
    failed = store.fail(failing.id, error, {"loading": 1.0})
    assert failed.status is JobStatus.FAILED and failed.error == error
    assert failed.timings == {"loading": 1.0}
    assert store.fail(queued.id, error) is None  # only running jobs can fail
    assert store.get(queued.id).status is JobStatus.QUEUED

    events = store.events_after(0)
    assert [e.type for e in events if e.job_id == clock_job.id] == ["queued", "started", "completed"]
    assert next(e for e in events if e.type == "failed").data["error"] == error


def test_update_progress(store: JobStore, backend: Backend) -> None:
    job = store.create("txt2img", {})
    other = store.create("txt2img", {})
    assert store.update_progress(job.id, step=1) is False  # queued: ignored
    assert store.get(job.id).progress["step"] == 0
    run_job(store, job.id)
    events_before = store.last_event_id()

    assert store.update_progress(job.id, steps=20, stage="sampling") is True
    assert store.update_progress(job.id, step=7) is True
    assert store.get(job.id).progress == {"step": 7, "steps": 20, "stage": "sampling"}
    assert store.update_progress(job.id, stage="decoding") is True
    assert store.get(job.id).progress == {"step": 7, "steps": 20, "stage": "decoding"}
    assert store.last_event_id() == events_before  # no event rows for progress
    assert store.get(other.id).progress["step"] == 0
    with pytest.raises(ValueError):
        store.update_progress(job.id, step=-1)

    reopened = backend.open()  # it is committed, not just cached
    try:
        assert reopened.get(job.id).progress == {"step": 7, "steps": 20, "stage": "decoding"}
    finally:
        reopened.close()

    store.cancel(job.id)
    assert store.update_progress(job.id, step=8) is False


def test_requeue_keeps_place_and_priority(store: JobStore) -> None:
    first = store.create("txt2img", {}, priority=1)
    second = store.create("txt2img", {}, priority=1)
    run_job(store, first.id)
    assert store.requeue(first.id) is True
    job = store.get(first.id)
    assert job.status is JobStatus.QUEUED and job.seq == first.seq and job.priority == 1
    assert job.started_at is None and job.attempts == 1
    assert store.queued_ids() == [first.id, second.id]
    assert store.requeue(first.id) is False  # queued, not running
    assert store.claim_next().attempts == 2


def test_recover_interrupted_fails_running_jobs(store: JobStore) -> None:
    running = store.create("txt2img", {}, owner="alice")
    queued = store.create("txt2img", {})
    run_job(store, running.id)

    affected = store.recover_interrupted(requeue=False)
    assert [job.id for job in affected] == [running.id]
    job = store.get(running.id)
    assert job.status is JobStatus.FAILED and job.error["code"] == "interrupted"
    assert job.finished_at is not None
    assert store.get(queued.id).status is JobStatus.QUEUED
    assert store.recover_interrupted(requeue=False) == []
    last = store.events_after(0)[-1]
    assert (last.type, last.job_id, last.owner) == ("failed", running.id, "alice")


def test_recover_interrupted_requeues_up_to_the_bound_then_fails(store: JobStore) -> None:
    job = store.create("txt2img", {})
    later = store.create("txt2img", {})
    for interruption in (1, 2):
        run_job(store, job.id)
        (recovered,) = store.recover_interrupted(max_interruptions=2)  # requeue is the default
        assert recovered.status is JobStatus.QUEUED and recovered.interruptions == interruption
        assert store.queued_ids() == [job.id, later.id]  # back at its old place

    run_job(store, job.id)  # interrupted a third time: beyond the bound
    (recovered,) = store.recover_interrupted(max_interruptions=2)
    assert recovered.status is JobStatus.FAILED and recovered.attempts == 3
    assert recovered.error["code"] == "interrupted" and recovered.error["interruptions"] == 3
    assert store.queued_ids() == [later.id]


def test_graceful_requeues_do_not_count_as_interruptions(store: JobStore) -> None:
    job = store.create("txt2img", {})
    for _ in range(5):
        run_job(store, job.id)
        assert store.requeue(job.id)  # what a server stop does with the running job
    run_job(store, job.id)
    (recovered,) = store.recover_interrupted(max_interruptions=1)
    assert recovered.status is JobStatus.QUEUED
    assert (recovered.attempts, recovered.interruptions) == (6, 1)


def test_users_take_turns_within_a_priority(store: JobStore) -> None:
    flood = [store.create("txt2img", {}, owner="alice") for _ in range(4)]
    bob = store.create("txt2img", {}, owner="bob")
    carol = [store.create("txt2img", {}, owner="carol") for _ in range(2)]
    urgent = store.create("txt2img", {}, owner="dave", priority=5)
    expected = [urgent.id, flood[0].id, bob.id, carol[0].id, flood[1].id, carol[1].id, flood[2].id, flood[3].id]
    assert store.queued_ids() == expected
    assert [store.queue_position(job_id) for job_id in expected] == list(range(len(expected)))
    assert store.queued_count("alice") == 4 and store.queued_count("bob") == 1
    assert [store.claim_next().id for _ in expected] == expected


# -- durability ---------------------------------------------------------------------------


def test_unknown_job_events_are_refused(store: JobStore) -> None:
    with pytest.raises(UnknownJobError):
        store.append_event("progress", job_id="missing")
    assert store.last_event_id() == 0


def test_everything_committed_survives_an_abandoned_store(backend: Backend) -> None:
    crashed = backend.open()  # never closed before the second store reads: a "crash"
    try:
        queued = crashed.create("txt2img", {"prompt": "kept"}, owner="alice")
        running = crashed.create("txt2img", {})
        done = crashed.create("upscale", {})
        run_job(crashed, queued.id)
        crashed.requeue(queued.id)  # back to queued, attempts 1
        run_job(crashed, queued.id)
        crashed.cancel(queued.id)
        run_job(crashed, running.id)
        run_job(crashed, done.id)
        crashed.complete(done.id, {"images": ["u.png"]}, {"upscale": 1.0})
        last_event = crashed.last_event_id()

        fresh = backend.open()
        try:
            assert fresh.get(queued.id).status is JobStatus.CANCELLED
            assert fresh.get(running.id).status is JobStatus.RUNNING
            assert fresh.get(done.id).result == {"images": ["u.png"]}
            assert fresh.last_event_id() == last_event
            assert [e.id for e in fresh.events_after(0)] == list(range(1, last_event + 1))
            assert [job.id for job in fresh.recover_interrupted(requeue=False)] == [running.id]
        finally:
            fresh.close()
    finally:
        crashed.close()


KILL_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from sdrest.jobs import open_store

    store = open_store(sys.argv[1])
    ids = [store.create("txt2img", {"n": n}, owner="alice").id for n in range(5)]
    claimed = store.claim_next()
    store.update_progress(claimed.id, step=3, steps=20, stage="sampling")
    print(json.dumps({"ids": ids, "claimed": claimed.id}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    print("still alive", flush=True)
    """
)


def test_kill_9_loses_nothing_committed(backend: Backend) -> None:
    repo_root = Path(sdrest.jobs.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}  # the code under test, not an install
    child = subprocess.run(
        [sys.executable, "-c", KILL_CHILD, backend.url], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "still alive" not in child.stdout
    report = json.loads(child.stdout)
    if backend.name == "sqlite":
        db_path = Path(backend.url.removeprefix("sqlite:///"))
        assert Path(f"{db_path}-wal").exists()  # the data lives in the WAL, never checkpointed

    store = backend.open()
    try:
        claimed = store.get(report["claimed"])
        assert claimed.status is JobStatus.RUNNING and claimed.attempts == 1
        assert claimed.progress == {"step": 3, "steps": 20, "stage": "sampling"}
        queued = [job_id for job_id in report["ids"] if job_id != report["claimed"]]
        assert store.queued_ids() == queued
        assert store.counts() == {"queued": 4, "running": 1, "completed": 0, "failed": 0, "cancelled": 0}
        assert [e.type for e in store.events_after(0)] == ["queued"] * 5 + ["started"]

        (recovered,) = store.recover_interrupted(requeue=False)
        assert recovered.id == claimed.id and recovered.status is JobStatus.FAILED
        assert store.get(claimed.id).error["code"] == "interrupted"
        assert store.claim_next().id == queued[0]
    finally:
        store.close()


# -- deleting -----------------------------------------------------------------------------


def test_delete_only_finished_jobs(store: JobStore) -> None:
    done = store.create("txt2img", {})
    queued = store.create("txt2img", {})
    run_job(store, done.id)
    store.complete(done.id, {"images": ["d.png"]}, {})

    assert store.delete(queued.id) is None
    assert store.get(queued.id) is not None
    deleted = store.delete(done.id)
    assert deleted is not None and deleted.result == {"images": ["d.png"]}
    assert store.get(done.id) is None
    assert store.events_after(0, job_id=done.id) == []  # its events went with it
    assert len(store.events_after(0, job_id=queued.id)) == 1
    assert store.delete(done.id) is None


def test_purge_finished_by_age(backend: Backend) -> None:
    clock = Clock()
    store = backend.open(clock=clock)
    try:
        old = store.create("txt2img", {})
        new = store.create("txt2img", {})
        unfinished = store.create("txt2img", {})
        store.cancel(old.id)  # finished at t0
        clock.now += 100
        run_job(store, new.id)
        store.fail(new.id, {"code": "x", "message": "y"})  # finished at t0 + 100

        assert store.purge_finished(older_than=clock.now - 100) == []  # strictly older only
        purged = store.purge_finished(older_than=clock.now - 50)
        assert [job.id for job in purged] == [old.id]
        assert store.get(old.id) is None and store.get(new.id) is not None
        purged = store.purge_finished(older_than=clock.now + 10**6)
        assert [job.id for job in purged] == [new.id]
        assert store.get(unfinished.id).status is JobStatus.QUEUED
        assert store.counts()["queued"] == 1
    finally:
        store.close()


def test_counts_cover_every_status(store: JobStore) -> None:
    assert store.counts() == {status.value: 0 for status in JobStatus}
    jobs = [store.create("txt2img", {}) for _ in range(4)]
    run_job(store, jobs[0].id)
    run_job(store, jobs[1].id)
    store.complete(jobs[1].id, {}, {})
    store.cancel(jobs[2].id)
    assert store.counts() == {"queued": 1, "running": 1, "completed": 1, "failed": 0, "cancelled": 1}


# -- events -------------------------------------------------------------------------------


def test_events_order_and_filters(store: JobStore) -> None:
    alice = store.create("txt2img", {}, owner="alice")
    bob = store.create("txt2img", {}, owner="bob")
    anonymous = store.create("txt2img", {})
    queue_event = store.append_event("queue", data={"length": 3})
    custom = store.append_event("note", job_id=alice.id, data={"text": "hi"})
    run_job(store, alice.id)

    events = store.events_after(0)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [e.type for e in events] == ["queued", "queued", "queued", "queue", "note", "started"]
    assert custom.owner == "alice"  # taken from the job
    assert store.events_after(queue_event.id) == events[4:]

    assert [e.type for e in store.events_after(0, job_id=alice.id)] == ["queued", "note", "started"]
    assert {e.owner for e in store.events_after(0, owners={"bob"})} == {"bob"}
    mixed = store.events_after(0, owners={"alice", None})
    assert [e.job_id for e in mixed] == [alice.id, anonymous.id, None, alice.id, alice.id]
    assert store.events_after(0, owners=set()) == []
    assert [e.job_id for e in store.events_after(0, owners={"bob"}, job_id=alice.id)] == []
    assert len(store.events_after(0, limit=2)) == 2
    assert [e.id for e in store.events_after(0, up_to=ids[2])] == ids[:3]
    assert store.last_event_id() == ids[-1]
    assert isinstance(events[0], Event) and events[0].created_at > 0

    with pytest.raises(ValueError):
        store.append_event("note", job_id=bob.id, owner="mallory")
    with pytest.raises(ValueError):
        store.append_event("note", data={"x": math.inf})


def test_event_ids_are_never_reused(store: JobStore, backend: Backend) -> None:
    for _ in range(5):
        store.create("txt2img", {})
    assert store.purge_events(keep_last=2) == 3
    assert [e.id for e in store.events_after(0)] == [4, 5]
    assert store.purge_events(keep_last=0) == 2
    assert store.events_after(0) == []
    assert store.last_event_id() == 5
    reopened = backend.open()
    try:
        assert reopened.append_event("queue").id == 6
    finally:
        reopened.close()


def test_listeners_run_after_commit(store: JobStore, backend: Backend) -> None:
    seen: list[tuple[str, bool]] = []
    other = backend.open()  # another connection sees each event committed

    def listener(event: Event) -> None:
        visible = other.events_after(event.id - 1, up_to=event.id)
        seen.append((event.type, [e.id for e in visible] == [event.id]))

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    store.add_listener(listener)
    job = store.create("txt2img", {})  # the broken listener does not undo or break this
    store.claim_next()
    store.update_progress(job.id, step=1)  # no event
    store.cancel(job.id)
    assert seen == [("queued", True), ("started", True), ("cancelled", True)]
    store.remove_listener(listener)
    store.create("txt2img", {})
    assert len(seen) == 3
    other.close()


def test_closed_store_refuses_use(backend: Backend) -> None:
    store = backend.open()
    store.close()
    store.close()  # idempotent
    with pytest.raises(sdrest.jobs.JobStoreError):
        store.create("txt2img", {})
