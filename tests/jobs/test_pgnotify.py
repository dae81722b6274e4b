"""Events across processes on one PostgreSQL database (LISTEN/NOTIFY): two stores on one real
database stand for two nodes, each with its own event bus.

The buses' clocks stand still, so a subscriber's wait never times out and never re-reads the
store on its own (the fallback that finds other processes' events without notifications): an
event reaches it only if something wakes it. :func:`woken_batch` waits for that wake in a
thread, with a guard (not a speed bound) so that a missing wake fails instead of hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from postgres_helpers import PostgresCluster
from sdrest.jobs import Event, EventBus, Subscription
from sdrest.jobs.pgnotify import MAX_BROADCAST_BYTES
from sdrest.jobs.pgstore import PostgresJobStore

#: Seconds before a subscriber that was never woken is declared so (a hang guard only).
WAKE_GUARD = 60.0


@dataclass
class Node:
    store: PostgresJobStore
    bus: EventBus

    def close(self) -> None:
        self.bus.close()
        self.store.close()


def open_node(url: str) -> Node:
    store = PostgresJobStore(url, pool_size=4)
    return Node(store, EventBus(store, clock=lambda: 0.0))  # time stands still: no timeouts


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[tuple[Node, Node]]:
    first, second = open_node(postgres_url), open_node(postgres_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def woken_batch(subscription: Subscription) -> list[Event]:
    """The subscription's next batch, which only a wake can bring (see the module docstring)."""
    results: list[list[Event]] = []
    waiter = threading.Thread(target=lambda: results.append(subscription.next_batch(1.0)), daemon=True)
    waiter.start()
    waiter.join(WAKE_GUARD)
    if waiter.is_alive():
        subscription.close()  # ends the wait
        waiter.join()
        pytest.fail("the subscriber was never woken")
    return results[0]


def collect_until(subscription: Subscription, last: Callable[[Event], bool]) -> list[Event]:
    """Woken batches until one holds an event that ``last`` accepts."""
    events: list[Event] = []
    while not any(last(event) for event in events):
        events.extend(woken_batch(subscription))
    return events


def steps(events: list[Event]) -> list[tuple[str, int | None]]:
    return [(event.type, event.data.get("step")) for event in events]


def test_an_event_appended_on_one_node_wakes_the_subscribers_of_another(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    everything = b.bus.subscribe(last_event_id=None)
    bobs = b.bus.subscribe(last_event_id=None, owners={"bob"})
    job = a.store.create("txt2img", {"prompt": "a lighthouse"}, owner="alice")
    (queued,) = woken_batch(everything)
    assert (queued.type, queued.job_id, queued.owner) == ("queued", job.id, "alice")
    assert queued.id == a.store.last_event_id()

    # Filters hold for other nodes' events: bob's subscriber skipped alice's (committed first).
    bobs_job = a.store.create("txt2img", {}, owner="bob")
    assert [(e.type, e.job_id) for e in woken_batch(bobs)] == [("queued", bobs_job.id)]
    assert [e.job_id for e in woken_batch(everything)] == [bobs_job.id]

    # Replay by Last-Event-ID on B of what A appended, then live again.
    replaying = b.bus.subscribe(last_event_id=queued.id, job_id=job.id)
    assert a.store.claim_next().id == job.id
    a.store.cancel(job.id)
    events = collect_until(replaying, lambda e: e.type == "cancelled")
    assert [e.type for e in events] == ["started", "cancelled"]
    assert [e.type for e in collect_until(everything, lambda e: e.type == "cancelled")] == ["started", "cancelled"]


def test_a_publishers_order_is_kept_on_other_nodes(nodes: tuple[Node, Node]) -> None:
    """Persisted and ephemeral events of one node arrive elsewhere in the order it made them."""
    a, b = nodes
    subscription = b.bus.subscribe(last_event_id=None)
    job = a.store.create("txt2img", {})
    a.store.claim_next()
    for step in (1, 2):
        a.bus.emit("progress", job_id=job.id, owner=None, data={"step": step, "steps": 2}, persist=False)
    a.store.complete(job.id, {"images": []}, {})
    events = collect_until(subscription, lambda e: e.type == "completed")
    assert steps(events) == [("queued", None), ("started", None), ("progress", 1), ("progress", 2), ("completed", None)]
    assert [e.id is None for e in events] == [False, False, True, True, False]


def test_ephemeral_events_reach_every_node_exactly_once(nodes: tuple[Node, Node]) -> None:
    """Each node's own ephemeral events come back to it through the database too: they must
    not be delivered twice. A reply from the other node, notified after the echo would be,
    tells each side that nothing more is coming."""
    a, b = nodes
    on_a = a.bus.subscribe(last_event_id=None)
    on_b = b.bus.subscribe(last_event_id=None)
    job = a.store.create("txt2img", {}, owner="alice")
    assert [e.type for e in woken_batch(on_a)] == ["queued"]
    assert [e.type for e in woken_batch(on_b)] == ["queued"]

    a.bus.emit("progress", job_id=job.id, owner="alice", data={"step": 1}, persist=False)
    assert steps(collect_until(on_b, lambda e: e.data.get("step") == 1)) == [("progress", 1)]
    b.bus.emit("progress", job_id=job.id, owner="alice", data={"step": 2}, persist=False)
    assert steps(collect_until(on_a, lambda e: e.data.get("step") == 2)) == [("progress", 1), ("progress", 2)]
    a.bus.emit("progress", job_id=job.id, owner="alice", data={"step": 3}, persist=False)
    assert steps(collect_until(on_b, lambda e: e.data.get("step") == 3)) == [("progress", 2), ("progress", 3)]
    assert on_a.dropped == on_b.dropped == 0


def test_previews_larger_than_a_notification_arrive_whole(nodes: tuple[Node, Node]) -> None:
    """A preview's data URL is split across notifications (8000 bytes each at most) and put
    together again; one beyond MAX_BROADCAST_BYTES stays on its node."""
    a, b = nodes
    on_a = a.bus.subscribe(last_event_id=None)
    on_b = b.bus.subscribe(last_event_id=None)
    image = "data:image/png;base64," + "".join(f"{n:08x}" for n in range(5000))  # 40 KB: 5 times the limit
    sent = a.bus.emit("preview", job_id=None, owner="alice", data={"step": 1, "image": image}, persist=False)
    (received,) = woken_batch(on_b)
    assert (received.type, received.owner, received.data, received.created_at) == (
        "preview",
        "alice",
        {"step": 1, "image": image},
        sent.created_at,
    )

    huge = "data:image/png;base64," + "A" * MAX_BROADCAST_BYTES
    a.bus.emit("preview", job_id=None, owner="alice", data={"step": 2, "image": huge}, persist=False)
    a.bus.emit("progress", job_id=None, owner="alice", data={"step": 3}, persist=False)
    assert steps(collect_until(on_b, lambda e: e.data.get("step") == 3)) == [("progress", 3)]
    local = collect_until(on_a, lambda e: e.data.get("step") == 3)
    assert steps(local) == [("preview", 1), ("preview", 2), ("progress", 3)]
    assert local[1].data["image"] == huge


def test_the_listener_reconnects_and_catches_up(postgres: PostgresCluster, postgres_url: str) -> None:
    """Events committed while a node's listening connection is down come after it reconnects
    (read from the table: their notifications were never delivered to it)."""
    a = PostgresJobStore(postgres_url, pool_size=2)  # appends only: no bus, so no listener
    b = open_node(postgres_url)
    database = sql.Identifier(postgres_url.rsplit("/", 1)[1])
    try:
        subscription = b.bus.subscribe(last_event_id=None)
        first = a.create("txt2img", {})
        assert [e.job_id for e in woken_batch(subscription)] == [first.id]
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            # Keep B from connecting again until the events below are committed.
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
            try:
                listeners = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'sdrest-events'",
                    (postgres_url.rsplit("/", 1)[1],),
                ).fetchall()
                assert len(listeners) == 1
                # The second argument waits until the backend has gone.
                assert admin.execute("SELECT pg_terminate_backend(%s, 30000)", (listeners[0][0],)).fetchone()[0]
                missed = [a.create("txt2img", {"n": n}) for n in range(3)]
            finally:
                admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
        events = collect_until(subscription, lambda e: e.job_id == missed[-1].id)
        assert [(e.type, e.job_id) for e in events] == [("queued", job.id) for job in missed]
        later = a.create("txt2img", {})  # listening again
        assert [e.job_id for e in woken_batch(subscription)] == [later.id]
    finally:
        b.close()
        a.close()


def test_close_stops_the_listening_thread(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url, pool_size=2)
    before = set(threading.enumerate())
    bus = EventBus(store)
    started = [t for t in threading.enumerate() if t not in before and t.name.startswith("sdrest-events")]
    assert len(started) == 1 and started[0].is_alive()
    bus.close()
    store.close()
    assert not started[0].is_alive()
    store.close()  # idempotent


def test_deployments_in_two_schemas_do_not_hear_each_other(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA red")
        conn.execute("CREATE SCHEMA blue")
    red = open_node(postgres_url + "?options=-csearch_path%3Dred")
    blue = open_node(postgres_url + "?options=-csearch_path%3Dblue")
    other_blue = open_node(postgres_url + "?options=-csearch_path%3Dblue")
    try:
        subscription = blue.bus.subscribe(last_event_id=None)
        red.bus.emit("progress", job_id=None, owner=None, data={"step": 1}, persist=False)
        red.store.create("txt2img", {})
        other_blue.bus.emit("progress", job_id=None, owner=None, data={"step": 2}, persist=False)
        assert steps(collect_until(subscription, lambda e: e.data.get("step") == 2)) == [("progress", 2)]
    finally:
        for node in (red, blue, other_blue):
            node.close()
