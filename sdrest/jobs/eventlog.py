"""The event log of the jobs database, and the write transactions whose events reach listeners.

Lifecycle events are appended in the same transaction as the change they describe, so the event
log and the job rows never disagree; after the commit, listeners (the
:class:`~sdrest.jobs.bus.EventBus` registers one) are called with them, so callers never publish
what the store wrote. Event ids are SSE ids: they only grow, and are never reused after a purge.
:class:`~sdrest.jobs.sqlitestore.SqliteJobStore` is an :class:`EventLog` over the same SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from sdrest.errors import SdrestError
from sdrest.jobs.records import Event, Job
from sdrest.sqlitedb import Database

log = logging.getLogger("sdrest.jobs")

EventListener = Callable[[Event], None]

_EVENT_COLUMNS = "id, type, job_id, owner, data, created_at"


class JobStoreError(SdrestError):
    """The job store cannot do what was asked (bad database, bad arguments)."""


class UnknownJobError(JobStoreError, KeyError):
    """An event was appended for a job id that is not in the store."""


class _JobRef(NamedTuple):
    """What an event needs of its job."""

    id: str
    owner: str | None


def dumps(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON, and the HTTP layer must be able to send this.
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def check_event(type: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """Validate an appended event; returns its data, detached from the caller's dict."""
    if not isinstance(type, str) or not type:
        raise ValueError("event type must be a non-empty string")
    return json.loads(dumps({} if data is None else data))


def check_keep_last(keep_last: int) -> None:
    if keep_last < 0:
        raise ValueError("keep_last must not be negative")


def event_from_row(row: tuple) -> Event:
    event_id, type_, job_id, owner, data, created_at = row
    return Event(id=event_id, type=type_, job_id=job_id, owner=owner, data=loads(data),
                 created_at=created_at)


def owner_clause(owners: set[str | None] | frozenset[str | None], placeholder: str = "?") -> tuple[str, list[Any]]:
    """SQL for "owner is one of these", where None in the set means rows with no owner
    (``placeholder``: the driver's parameter marker)."""
    names = [owner for owner in owners if owner is not None]
    parts: list[str] = []
    if names:
        parts.append(f"owner IN ({', '.join([placeholder] * len(names))})")
    if None in owners:
        parts.append("owner IS NULL")
    if not parts:
        return "FALSE", []  # an empty set matches nothing
    return f"({' OR '.join(parts)})", names


class Transaction:
    """What a write transaction collected: events to hand to listeners after the commit."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor
        self.events: list[Event] = []


class Listeners:
    """The listeners a store calls with each event it appended, once the change is committed."""

    def __init__(self) -> None:
        self._listeners_lock = threading.Lock()
        self._listeners: tuple[EventListener, ...] = ()

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(event)`` after each persisted event is committed (in that thread)."""
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: EventListener) -> None:
        with self._listeners_lock:
            self._listeners = tuple(item for item in self._listeners if item != listener)

    def _notify(self, events: list[Event]) -> None:
        for event in events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # the change is committed; a broken listener must not undo it
                    log.exception("event listener %r failed on %s", listener, event.type)


class EventLog(Listeners):
    """Events persisted in ``db`` (its ``events`` table), and transactions that notify listeners."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._db = db
        self._clock = clock
        self._lock = db.lock

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Cursor]:
        """A snapshot for several SELECTs (e.g. a page and its total) that must agree."""
        return self._db.read()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Transaction]:
        """A write transaction; committed on success, rolled back on any exception.

        Listeners run after the commit and outside the lock, so a slow or re-entrant listener
        cannot stall or deadlock the store.
        """
        with self._db.write() as cursor:
            transaction = Transaction(cursor)
            yield transaction
        self._notify(transaction.events)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        return self._db.query(sql, args)

    def _insert_event(self, tx: Transaction, type_: str, job: Job | _JobRef | None,
                      data: dict[str, Any]) -> Event:
        """Append an event inside ``tx``; its owner is always the job's owner."""
        now = self._clock()
        job_id = None if job is None else job.id
        owner = None if job is None else job.owner
        tx.cursor.execute(
            "INSERT INTO events (type, job_id, owner, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (type_, job_id, owner, dumps(data), now),
        )
        event = Event(id=tx.cursor.lastrowid, type=type_, job_id=job_id, owner=owner,
                      data=data, created_at=now)
        tx.events.append(event)
        return event

    def append_event(self, type: str, *, job_id: str | None = None, owner: str | None = None,
                     data: dict[str, Any] | None = None) -> Event:
        """Persist an event; its id is larger than every id handed out before.

        With ``job_id`` the event's owner is the job's owner (so subscribers filtered by owner
        can never see another user's job); passing a different ``owner`` is an error, and an
        unknown job raises :class:`UnknownJobError`.
        """
        data = check_event(type, data)
        with self._write() as tx:
            if job_id is None:
                now = self._clock()
                tx.cursor.execute(
                    "INSERT INTO events (type, job_id, owner, data, created_at)"
                    " VALUES (?, NULL, ?, ?, ?)",
                    (type, owner, dumps(data), now),
                )
                event = Event(id=tx.cursor.lastrowid, type=type, job_id=None, owner=owner,
                              data=data, created_at=now)
                tx.events.append(event)
                return event
            row = tx.cursor.execute("SELECT owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise UnknownJobError(job_id)
            if owner is not None and owner != row[0]:
                raise ValueError(f"event owner {owner!r} is not the owner of job {job_id}")
            return self._insert_event(tx, type, _JobRef(job_id, row[0]), data)

    def events_after(
        self,
        last_id: int,
        *,
        job_id: str | None = None,
        owners: set[str | None] | frozenset[str | None] | None = None,
        limit: int = 1000,
        up_to: int | None = None,
    ) -> list[Event]:
        """Persisted events with ``last_id < id`` (and ``id <= up_to`` if given), oldest first.

        ``owners=None`` means every owner; ``None`` inside the set matches events without an
        owner (queue-wide events, jobs of anonymous users).
        """
        where: list[str] = ["id > ?"]
        args: list[Any] = [last_id]
        if up_to is not None:
            where.append("id <= ?")
            args.append(up_to)
        if job_id is not None:
            where.append("job_id = ?")
            args.append(job_id)
        if owners is not None:
            clause, owner_args = owner_clause(owners)
            where.append(clause)
            args.extend(owner_args)
        rows = self._query(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            [*args, limit],
        )
        return [event_from_row(row) for row in rows]

    def last_event_id(self) -> int:
        """The highest event id ever handed out (0 if none), even if that event was purged."""
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return rows[0][0] if rows else 0

    def purge_events(self, keep_last: int) -> int:
        """Delete all but the newest ``keep_last`` events; returns how many were deleted.

        Ids are never reused, so clients holding an old ``Last-Event-ID`` simply replay less.
        """
        check_keep_last(keep_last)
        with self._write() as tx:
            tx.cursor.execute(
                "DELETE FROM events WHERE id NOT IN"
                " (SELECT id FROM events ORDER BY id DESC LIMIT ?)",
                (keep_last,),
            )
            return tx.cursor.rowcount
