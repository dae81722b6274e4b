"""The event log of the jobs database, and the write transactions whose events reach listeners.

Lifecycle events are appended in the same transaction as the change they describe, so the event
log and the job rows never disagree; after the commit, listeners (the
:class:`~sdrest.jobs.bus.EventBus` registers one) are called with them, so callers never publish
what the store wrote. Event ids are SSE ids: they only grow, in commit order, and are never
reused after a purge. :class:`EventLog` is the SQL both backends share; how a transaction is
opened and where an event's id comes from is each backend's own
(:mod:`~sdrest.jobs.sqlitestore`, :mod:`~sdrest.jobs.pgstore`).
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from sdrest.errors import SdrestError, StoreUnavailable
from sdrest.jobs.records import Event, Job

log = logging.getLogger("sdrest.jobs")

EventListener = Callable[[Event], None]

_EVENT_COLUMNS = "id, type, job_id, owner, data, created_at"


class JobStoreError(SdrestError):
    """The job store cannot do what was asked (bad database, bad arguments)."""


class JobStoreUnavailable(JobStoreError, StoreUnavailable):
    """The job store's database cannot be used for now (see :class:`~sdrest.errors.StoreUnavailable`)."""


class UnknownJobError(JobStoreError, KeyError):
    """An event was appended for a job id that is not in the store."""


class JobRef(NamedTuple):
    """What an event needs of its job (``id`` None: a queue-wide event)."""

    id: str | None
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
    return Event(id=event_id, type=type_, job_id=job_id, owner=owner, data=loads(data), created_at=created_at)


def owner_clause(owners: set[str | None] | frozenset[str | None]) -> tuple[str, list[Any]]:
    """SQL for "owner is one of these", where None in the set means rows with no owner."""
    names = [owner for owner in owners if owner is not None]
    parts: list[str] = []
    if names:
        parts.append(f"owner IN ({', '.join('?' * len(names))})")
    if None in owners:
        parts.append("owner IS NULL")
    if not parts:
        return "FALSE", []  # an empty set matches nothing
    return f"({' OR '.join(parts)})", names


class Cursor(Protocol):
    """What the shared SQL needs of a database cursor (``?`` marks parameters in both backends)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction:
    """What a write transaction collected: events to hand to listeners after the commit."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        self.events: list[Event] = []


class Listeners:
    """The listeners a store calls with each event it appended, once the change is committed,
    and the remote listeners it calls with the events of other processes sharing its database."""

    def __init__(self) -> None:
        self._listeners_lock = threading.Lock()
        self._listeners: tuple[EventListener, ...] = ()
        self._remote_listeners: tuple[EventListener, ...] = ()

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener(event)`` after each persisted event is committed (in that thread)."""
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: EventListener) -> None:
        with self._listeners_lock:
            self._listeners = tuple(item for item in self._listeners if item != listener)

    def add_remote_listener(self, listener: EventListener) -> None:
        """Call ``listener(event)`` with the events that *other* processes sharing this store
        append (once committed, in id order) or :meth:`broadcast`, in a thread of the store's.
        A persisted event may come more than once (after a lost connection): deduplicate by id.
        A store that no other process shares never calls it."""
        with self._listeners_lock:
            self._remote_listeners = (*self._remote_listeners, listener)

    def remove_remote_listener(self, listener: EventListener) -> None:
        with self._listeners_lock:
            self._remote_listeners = tuple(item for item in self._remote_listeners if item != listener)

    def broadcast(self, event: Event) -> None:
        """Hand an ephemeral event to the remote listeners of the other processes sharing this
        store; best effort, never raises. Nothing to do where no other process can share it."""

    def _notify(self, events: Iterable[Event]) -> None:
        self._call(self._listeners, events)

    def _notify_remote(self, events: Iterable[Event]) -> None:
        self._call(self._remote_listeners, events)

    @staticmethod
    def _call(listeners: tuple[EventListener, ...], events: Iterable[Event]) -> None:
        for event in events:
            for listener in listeners:
                try:
                    listener(event)
                except Exception:  # the change is committed; a broken listener must not undo it
                    log.exception("event listener %r failed on %s", listener, event.type)


class EventLog(Listeners, abc.ABC):
    """Events persisted in the ``events`` table, and transactions that notify listeners.

    A backend provides :meth:`_write` (a transaction whose events reach the listeners after its
    commit, outside any lock, so a slow or re-entrant listener cannot stall or deadlock the
    store), :meth:`_query`, :meth:`_insert_event` and :meth:`last_event_id`.
    """

    #: Appended to the SELECT of a job an event is appended for: the lock the event's foreign
    #: key takes, taken before the event id's (PostgreSQL); empty where writes are serialised.
    _KEY_SHARE = ""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock

    @abc.abstractmethod
    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...

    @abc.abstractmethod
    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[Any]: ...

    @abc.abstractmethod
    def _insert_event(self, tx: Transaction, type_: str, job: Job | JobRef, data: dict[str, Any]) -> Event:
        """Append an event of ``job`` (its id and owner) inside ``tx``."""

    @abc.abstractmethod
    def last_event_id(self) -> int:
        """The highest committed event id ever handed out (0 if none), even if purged."""

    def append_event(
        self, type: str, *, job_id: str | None = None, owner: str | None = None, data: dict[str, Any] | None = None
    ) -> Event:
        """Persist an event; its id is larger than every id handed out before.

        With ``job_id`` the event's owner is the job's owner (so subscribers filtered by owner
        can never see another user's job); passing a different ``owner`` is an error, and an
        unknown job raises :class:`UnknownJobError`.
        """
        data = check_event(type, data)
        with self._write() as tx:
            if job_id is None:
                return self._insert_event(tx, type, JobRef(None, owner), data)
            row = tx.cursor.execute(f"SELECT owner FROM jobs WHERE id = ?{self._KEY_SHARE}", (job_id,)).fetchone()
            if row is None:
                raise UnknownJobError(job_id)
            if owner is not None and owner != row[0]:
                raise ValueError(f"event owner {owner!r} is not the owner of job {job_id}")
            return self._insert_event(tx, type, JobRef(job_id, row[0]), data)

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

    def purge_events(self, keep_last: int) -> int:
        """Delete all but the newest ``keep_last`` events; returns how many were deleted.

        Ids are never reused, so clients holding an old ``Last-Event-ID`` simply replay less.
        """
        check_keep_last(keep_last)
        with self._write() as tx:
            return tx.cursor.execute(
                "DELETE FROM events WHERE id NOT IN (SELECT id FROM events ORDER BY id DESC LIMIT ?)",
                (keep_last,),
            ).rowcount
