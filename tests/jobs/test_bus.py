"""EventBus: replay from the store, live delivery, filtering, bounds and wake-ups (on both job
store backends: tests/jobs/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from helpers import FakeClock
from postgres_helpers import Backend
from sdrest.jobs import Event, EventBus, JobStore, Subscription
from sdrest.jobs import bus as bus_module


@pytest.fixture
def bus(store: JobStore) -> Iterator[EventBus]:
    event_bus = EventBus(store)
    yield event_bus
    event_bus.close()


def drain(subscription: Subscription, timeout: float = 0.05) -> list[Event]:
    """Everything the subscription has right now (batches until one comes back empty)."""
    events: list[Event] = []
    while batch := subscription.next_batch(timeout):
        events.extend(batch)
    return events


def kinds(events: list[Event]) -> list[str]:
    return [event.type for event in events]


def test_replay_after_last_event_id_then_live(store: JobStore, bus: EventBus) -> None:
    first = store.create("txt2img", {})
    second = store.create("txt2img", {})
    third = store.create("txt2img", {})
    marker = store.events_after(0)[0].id

    subscription = bus.subscribe(last_event_id=marker)
    replayed = subscription.next_batch(1.0)
    assert [e.job_id for e in replayed] == [second.id, third.id]  # after the id, not including
    assert subscription.last_event_id == replayed[-1].id

    store.claim_next()  # a persisted event, published by the store's listener
    bus.emit("progress", job_id=first.id, owner=None, data={"step": 1}, persist=False)
    live = subscription.next_batch(1.0)
    assert kinds(live) == ["started", "progress"]
    assert live[0].id is not None and live[1].id is None
    assert subscription.next_batch(0.05) == []


def test_without_last_event_id_only_new_events(store: JobStore, bus: EventBus) -> None:
    store.create("txt2img", {})
    subscription = bus.subscribe(last_event_id=None)
    assert subscription.next_batch(0.05) == []
    job = store.create("img2img", {})
    (event,) = subscription.next_batch(1.0)
    assert (event.type, event.job_id) == ("queued", job.id)


def test_last_event_id_from_the_future_is_clamped(store: JobStore, bus: EventBus) -> None:
    """A client that remembers ids from a deleted database must still get new events."""
    store.create("txt2img", {})
    subscription = bus.subscribe(last_event_id=10**9)
    assert subscription.next_batch(0.05) == []
    job = store.create("txt2img", {})
    assert [e.job_id for e in subscription.next_batch(1.0)] == [job.id]


def test_ephemeral_events_are_live_only(store: JobStore, bus: EventBus) -> None:
    job = store.create("txt2img", {}, owner="alice")
    live = bus.subscribe(last_event_id=None)
    preview = bus.emit("preview", job_id=job.id, owner="alice", data={"image": "b64"}, persist=False)
    assert preview.id is None
    assert live.next_batch(1.0) == [preview]

    late = bus.subscribe(last_event_id=0)
    assert kinds(drain(late)) == ["queued"]  # the preview is not replayable
    assert all(e.type != "preview" for e in store.events_after(0))


def test_persisted_emit_goes_through_the_store(store: JobStore, bus: EventBus) -> None:
    job = store.create("txt2img", {}, owner="alice")
    subscription = bus.subscribe(last_event_id=None)
    event = bus.emit("queue", job_id=None, owner=None, data={"length": 1}, persist=True)
    assert event.id == store.last_event_id()
    assert subscription.next_batch(1.0) == [event]
    bus.publish(event)  # publishing a persisted event again does not duplicate it
    bus.emit("note", job_id=job.id, owner=None, data={}, persist=True)
    assert kinds(drain(subscription)) == ["note"]


def test_filters_by_job_and_owner(store: JobStore, bus: EventBus) -> None:
    alice = store.create("txt2img", {}, owner="alice")
    bob = store.create("txt2img", {}, owner="bob")
    by_owner = bus.subscribe(last_event_id=0, owners={"alice", None})
    by_job = bus.subscribe(last_event_id=0, job_id=bob.id)
    everyone = bus.subscribe(last_event_id=0)

    bus.emit("progress", job_id=alice.id, owner="alice", data={"step": 1}, persist=False)
    bus.emit("progress", job_id=bob.id, owner="bob", data={"step": 1}, persist=False)
    bus.emit("queue", job_id=None, owner=None, data={"length": 2}, persist=False)
    store.claim_next()  # alice's job starts

    assert [(e.type, e.job_id) for e in drain(by_owner)] == [
        ("queued", alice.id),
        ("progress", alice.id),
        ("queue", None),
        ("started", alice.id),
    ]
    assert [(e.type, e.owner) for e in drain(by_job)] == [("queued", "bob"), ("progress", "bob")]
    assert len(drain(everyone)) == 6
    nobody = bus.subscribe(last_event_id=0, owners=set())
    bus.emit("progress", job_id=alice.id, owner="alice", data={}, persist=False)
    assert nobody.next_batch(0.05) == []


def test_publisher_order_is_kept(store: JobStore, bus: EventBus) -> None:
    """Progress published between "started" and "completed" arrives between them."""
    job = store.create("txt2img", {})
    subscription = bus.subscribe(last_event_id=None)
    store.claim_next()
    for step in (1, 2):
        store.update_progress(job.id, step=step, steps=2)
        bus.emit("progress", job_id=job.id, owner=None, data={"step": step}, persist=False)
    store.complete(job.id, {"images": []}, {})
    bus.emit("queue", job_id=None, owner=None, data={"length": 0}, persist=False)
    events = drain(subscription)
    assert kinds(events) == ["started", "progress", "progress", "completed", "queue"]
    assert [e.data.get("step") for e in events[1:3]] == [1, 2]


def test_replay_longer_than_a_page_stays_ordered(
    store: JobStore, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bus_module, "REPLAY_PAGE", 4)
    jobs = [store.create("txt2img", {"n": n}) for n in range(11)]
    subscription = bus.subscribe(last_event_id=0)
    bus.emit("progress", job_id=jobs[0].id, owner=None, data={}, persist=False)
    late = store.create("txt2img", {})
    batches = []
    while batch := subscription.next_batch(0.05):
        batches.append(batch)
    assert max(len(batch) for batch in batches) <= 4 + 1
    events = [event for batch in batches for event in batch]
    assert [e.job_id for e in events] == [job.id for job in jobs] + [jobs[0].id, late.id]
    assert kinds(events)[-2:] == ["progress", "queued"]


class WaitClock(FakeClock):
    """A fake monotonic clock for the bus. Each read after the first of a ``next_batch`` call
    comes right before the subscriber waits on its condition (the bus lock held until the wait
    starts): ``waiting`` tells another thread that a publish now finds the subscriber asleep.
    ``step`` moves time on by that much at every read."""

    def __init__(self, step: float = 0.0) -> None:
        super().__init__(0.0)
        self.step = step
        self.reads = 0
        self.waiting = threading.Event()

    def __call__(self) -> float:
        now = self.now
        self.reads += 1
        if self.reads > 1:
            self.waiting.set()
        self.now += self.step
        return now


def test_timeout_returns_empty_list(store: JobStore) -> None:
    clock = WaitClock(step=0.01)
    bus = EventBus(store, clock=clock)
    subscription = bus.subscribe(last_event_id=None)
    assert subscription.next_batch(0.05) == []
    assert clock.now >= 0.05 and clock.reads >= 3  # waited, then gave up at the deadline
    reads = clock.reads
    assert subscription.next_batch(0) == []
    assert clock.reads == reads + 2  # no wait at all: the deadline has passed at once
    bus.close()


def test_waiting_subscriber_wakes_on_publish(store: JobStore) -> None:
    clock = WaitClock()  # time stands still: only a publish can end the wait
    bus = EventBus(store, clock=clock)
    subscription = bus.subscribe(last_event_id=None)
    results: list[list[Event]] = []
    waiter = threading.Thread(target=lambda: results.append(subscription.next_batch(3600.0)))
    waiter.start()
    assert clock.waiting.wait(30)
    job = store.create("txt2img", {})  # from another thread
    waiter.join(timeout=30)
    assert not waiter.is_alive()  # woken by the publish: the timeout was an hour
    assert [[e.job_id for e in batch] for batch in results] == [[job.id]]
    bus.close()


def test_64_subscribers_each_receive_the_event(store: JobStore, bus: EventBus) -> None:
    subscriptions = [bus.subscribe(last_event_id=None) for _ in range(64)]
    assert bus.subscriber_count == 64
    received: dict[int, list[Event]] = {}

    def listen(index: int, subscription: Subscription) -> None:
        received[index] = subscription.next_batch(3600.0)

    threads = [threading.Thread(target=listen, args=item) for item in enumerate(subscriptions)]
    for thread in threads:
        thread.start()
    # Subscribed before the event, so each gets it, whether already waiting or not.
    job = store.create("txt2img", {})
    for thread in threads:
        thread.join(timeout=30)
    assert len(received) == 64
    assert all([e.job_id for e in batch] == [job.id] for batch in received.values())

    for subscription in subscriptions:
        subscription.close()
    assert bus.subscriber_count == 0


def test_bounded_queue_drops_oldest_ephemeral_never_persisted(store: JobStore, bus: EventBus) -> None:
    subscription = bus.subscribe(last_event_id=None, max_pending=5)
    job = store.create("txt2img", {})
    for step in range(20):
        bus.emit("progress", job_id=job.id, owner=None, data={"step": step}, persist=False)
        if step == 10:
            store.claim_next()
    store.cancel(job.id)

    events = drain(subscription)
    assert [(e.type, e.data.get("step")) for e in events] == [("queued", None), ("started", None)] + [
        ("progress", n) for n in range(15, 20)
    ] + [("cancelled", None)]
    assert subscription.dropped == 15


def test_stalled_subscriber_holds_bounded_memory(store: JobStore, bus: EventBus) -> None:
    subscription = bus.subscribe(last_event_id=None, max_pending=3)
    for _ in range(50):
        store.create("txt2img", {})  # persisted: re-read from the store, one marker suffices
    assert len(subscription._pending) == 1
    for _ in range(50):
        store.create("txt2img", {})
        bus.emit("progress", job_id=None, owner=None, data={}, persist=False)
    assert len(subscription._pending) <= 2 * 3 + 1
    events = drain(subscription)
    assert kinds(events).count("queued") == 100
    assert kinds(events).count("progress") == 3


def test_close_wakes_waiters(store: JobStore) -> None:
    clock = WaitClock()  # time stands still: only the close can end the wait
    bus = EventBus(store, clock=clock)
    subscription = bus.subscribe(last_event_id=None)
    other = bus.subscribe(last_event_id=None)
    results: list[list[Event]] = []
    waiter = threading.Thread(target=lambda: results.append(subscription.next_batch(3600.0)))
    waiter.start()
    assert clock.waiting.wait(30)
    bus.close()
    waiter.join(timeout=30)
    assert not waiter.is_alive() and results == [[]]
    assert subscription.closed and other.closed and bus.subscriber_count == 0
    store.create("txt2img", {})  # no listener left: nothing breaks
    with pytest.raises(RuntimeError):
        bus.subscribe(last_event_id=None)


def test_events_from_another_connection_are_seen_on_timeout(store: JobStore, bus: EventBus, backend: Backend) -> None:
    subscription = bus.subscribe(last_event_id=None)
    other_process = backend.open()  # its appends do not reach this bus (another node's would not)
    try:
        job = other_process.create("txt2img", {})
    finally:
        other_process.close()
    assert [e.job_id for e in subscription.next_batch(0.1)] == [job.id]
    assert subscription.next_batch(0.05) == []
