"""In-process event delivery for Server-Sent Events subscribers.

The store is the source of truth for persisted events, so the bus never keeps them: a
subscriber remembers the id of the last persisted event it delivered (its cursor) and reads
newer ones from the store. Publishing a persisted event only leaves a *marker* in each matching
subscriber's queue, which wakes it and records where the event falls among ephemeral events.
This gives the guarantees SSE needs without unbounded memory:

* persisted events are never lost, even for a subscriber that stalls (they are re-read by id;
  consecutive markers collapse into one, so a stalled subscriber costs O(``max_pending``));
* ephemeral events (progress, previews) that arrive between two ``next_batch`` calls wait in a
  bounded queue; when it overflows the oldest ephemeral ones are dropped (counted in
  :attr:`Subscription.dropped`);
* a publisher's own order is kept: an ephemeral event published after a persisted one is
  delivered after it;
* each subscriber has its own condition variable on the bus lock, so a publish wakes only the
  subscribers it concerns and waiting costs nothing (no polling, no per-subscriber threads).

The bus registers itself as a listener of the store, so every event the store appends (job
created, started, completed, ...) is published automatically, committed first.

Several processes may share one store (API nodes and workers on one PostgreSQL database): the
bus is also the store's *remote* listener, so the events other processes append (committed, in
id order) and their ephemeral events (which :meth:`EventBus.emit` hands to the store's
``broadcast``) are published here through the same path, with the same guarantees. A store that
cannot notify (SQLite) leaves other processes' appends to the timeout check of
:meth:`Subscription.next_batch`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sdrest.jobs.records import Event
from sdrest.jobs.store import JobStore

#: Ephemeral events a subscriber may have waiting before the oldest ones are dropped.
DEFAULT_MAX_PENDING = 256

#: Persisted events read from the store per batch (a reconnecting client may be far behind).
REPLAY_PAGE = 1000


class EventBus:
    """Fans events out to subscribers; see the module docstring for the guarantees."""

    def __init__(
        self, store: JobStore, *, max_pending: int = DEFAULT_MAX_PENDING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``clock``: the monotonic seconds that ``next_batch`` timeouts are measured in."""
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.store = store
        self.max_pending = max_pending
        self.clock = clock
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._closed = False
        store.add_listener(self.publish)
        store.add_remote_listener(self.publish)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every matching subscriber and wake it.

        Persisted events (``id`` set) must already be committed to the store; publishing one
        twice is harmless. Ephemeral events are shared, not copied: treat them as read-only.
        """
        with self._lock:
            for subscription in self._subscriptions:
                subscription._offer(event)

    def emit(
        self,
        type: str,
        *,
        job_id: str | None = None,
        owner: str | None = None,
        data: dict[str, Any] | None = None,
        persist: bool = False,
    ) -> Event:
        """Create and publish an event; with ``persist`` it is appended to the store first.

        A persisted event reaches subscribers through the store's listener (after the commit),
        so it is published exactly once. An ephemeral one is published here, then broadcast to
        the other processes sharing the store (which publish it on their buses).
        """
        if persist:
            return self.store.append_event(type, job_id=job_id, owner=owner, data=data)
        event = Event(
            id=None, type=type, job_id=job_id, owner=owner, data={} if data is None else data, created_at=time.time()
        )
        self.publish(event)
        self.store.broadcast(event)
        return event

    def subscribe(
        self,
        *,
        last_event_id: int | None = None,
        job_id: str | None = None,
        owners: Iterable[str | None] | None = None,
        max_pending: int | None = None,
    ) -> Subscription:
        """Start receiving events.

        ``last_event_id`` (an SSE ``Last-Event-ID``): first replay persisted events after it;
        None: only events from now on. ``job_id`` / ``owners`` filter as in
        :meth:`JobStore.events_after` (``None`` in ``owners`` admits owner-less events).
        """
        subscription = Subscription(
            self,
            job_id=job_id,
            owners=None if owners is None else frozenset(owners),
            max_pending=self.max_pending if max_pending is None else max_pending,
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("the event bus is closed")
            self._subscriptions.add(subscription)
        # Registered first, then the horizon read: an event committed in between is either at
        # or below the horizon (replayed or deliberately skipped) or above it (its marker is
        # already queued), so nothing falls through the gap.
        horizon = self.store.last_event_id()
        with self._lock:
            subscription._start(horizon, last_event_id)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def close(self) -> None:
        """Detach from the store and close every subscription (their waits return [])."""
        self.store.remove_listener(self.publish)
        self.store.remove_remote_listener(self.publish)
        with self._lock:
            self._closed = True
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.close()


class Subscription:
    """One subscriber's view of the event stream. Use it from one thread at a time."""

    def __init__(
        self, bus: EventBus, *, job_id: str | None, owners: frozenset[str | None] | None, max_pending: int
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._bus = bus
        self.job_id = job_id
        self.owners = owners
        self.max_pending = max_pending
        self._cond = threading.Condition(bus._lock)  # state below is guarded by the bus lock
        self._consumer = threading.Lock()  # serialises next_batch calls
        # Ephemeral events and persisted markers, in publish order.
        self._pending: collections.deque[Event] = collections.deque()
        self._ephemeral = 0
        self._cursor = 0  # last persisted id delivered (or passed over)
        self._upper = 0  # persisted ids up to here are known to be due
        self._replay_upto: int | None = None  # ids committed before subscribing come first
        self._closed = False
        self.dropped = 0  # ephemeral events lost to overflow

    # -- called by the bus, with the bus lock held ------------------------------------------

    def _start(self, horizon: int, last_event_id: int | None) -> None:
        if last_event_id is None or last_event_id >= horizon:
            # A Last-Event-ID beyond the newest id (a recreated database) must not make us
            # skip the ids that will now be handed out again from below it.
            self._cursor = horizon
        else:
            self._cursor = max(0, last_event_id)
            self._replay_upto = horizon
        self._upper = max(self._upper, horizon)

    def _matches(self, event: Event) -> bool:
        if self.job_id is not None and event.job_id != self.job_id:
            return False
        return self.owners is None or event.owner in self.owners

    def _offer(self, event: Event) -> None:
        if self._closed or not self._matches(event):
            return
        pending = self._pending
        if event.id is not None:
            if event.id <= self._cursor:
                return  # already delivered (published twice, or read from the store already)
            self._upper = max(self._upper, event.id)
            if pending and pending[-1].id is not None:
                # Nothing ephemeral in between: one marker for both says the same.
                pending[-1] = _later(pending[-1], event)
            else:
                pending.append(event)
        else:
            pending.append(event)
            self._ephemeral += 1
            self._trim()
        self._cond.notify()

    def _trim(self) -> None:
        """Drop the oldest ephemeral events beyond the bound; markers are kept (merged)."""
        pending = self._pending
        while self._ephemeral > self.max_pending:
            marker: Event | None = None
            while pending[0].id is not None:
                head = pending.popleft()
                marker = head if marker is None else _later(marker, head)
            pending.popleft()
            self._ephemeral -= 1
            self.dropped += 1
            if marker is not None:
                if pending and pending[0].id is not None:
                    pending[0] = _later(pending[0], marker)
                else:
                    pending.appendleft(marker)

    # -- the consumer side ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_event_id(self) -> int:
        """The id of the last persisted event this subscription has passed (for reconnects)."""
        return self._cursor

    def next_batch(self, timeout: float) -> list[Event]:
        """The next events, oldest first, waiting up to ``timeout`` seconds; [] on timeout.

        Replayed persisted events come first, then live ones. A timeout also checks the store
        once, so events appended by another process on the same database are seen too.
        """
        with self._consumer:
            clock = self._bus.clock
            deadline = clock() + max(0.0, timeout)
            while True:
                with self._cond:
                    while not self._closed and not self._pending and self._upper <= self._cursor:
                        remaining = deadline - clock()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    if self._closed:
                        return []
                    items = list(self._pending)
                    self._pending.clear()
                    self._ephemeral = 0
                    cursor, upper, replay_upto = self._cursor, self._upper, self._replay_upto
                idle = not items and upper <= cursor
                batch = self._assemble(items, cursor, None if idle else upper, replay_upto)
                # Markers of events that the store read already delivered give empty batches:
                # keep waiting then, rather than returning [] before the timeout.
                if batch or idle:
                    return batch

    def _assemble(self, items: list[Event], cursor: int, upper: int | None, replay_upto: int | None) -> list[Event]:
        """Merge the store's persisted events (cursor, upper] into the drained queue items.

        ``upper`` None reads whatever is there (the timeout check). If a page of the store does
        not reach a marker, the rest of the queue is put back for the next call.
        """
        page: list[Event] = []
        if upper is None or upper > cursor:
            page = self._bus.store.events_after(
                cursor, job_id=self.job_id, owners=self.owners, limit=REPLAY_PAGE, up_to=upper
            )
        if len(page) == REPLAY_PAGE or upper is None:
            through = _id(page[-1]) if page else cursor  # complete only up to what we got
        else:
            through = max(cursor, upper)
        out: list[Event] = []
        index = 0

        def deliver_through(limit: int) -> None:
            nonlocal index
            while index < len(page) and _id(page[index]) <= limit:
                out.append(page[index])
                index += 1

        rest: list[Event] = []
        if replay_upto is not None:
            deliver_through(replay_upto)
            if through < replay_upto:
                rest = items  # the replay goes on next time, before anything live
                items = []
            else:
                replay_upto = None
        for position, item in enumerate(items):
            if item.id is None:
                out.append(item)
            elif item.id <= through:
                deliver_through(item.id)
            else:
                rest = items[position:]
                break
        # Events up to `through` are due before the first item put back (a marker above it).
        deliver_through(through)
        with self._cond:
            self._cursor = max(self._cursor, through)
            self._upper = max(self._upper, through)
            self._replay_upto = replay_upto
            if rest:
                self._pending.extendleft(reversed(rest))
                self._ephemeral += sum(1 for item in rest if item.id is None)
                self._trim()
        return out

    def close(self) -> None:
        """Stop receiving; a ``next_batch`` waiting in another thread returns []."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._ephemeral = 0
            self._cond.notify_all()
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _id(event: Event) -> int:
    """The id of a persisted event (markers and store rows always have one)."""
    assert event.id is not None
    return event.id


def _later(first: Event, second: Event) -> Event:
    """Of two persisted-event markers, the one with the higher id."""
    return second if _id(second) > _id(first) else first
