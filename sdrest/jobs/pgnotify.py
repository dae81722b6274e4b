"""Events across processes that share a PostgreSQL job store: LISTEN/NOTIFY.

Every process on the database (API nodes, workers) has its own :class:`~sdrest.jobs.bus.EventBus`;
this module carries each process's events to the others, so that an SSE client on any node sees
every event of its jobs.

*Persisted events* (queued, started, completed, ...): the transaction that appends one also
sends a notification naming its id. PostgreSQL delivers notifications only at commit and in
commit order, which for events is id order (event-appending transactions commit one after
another: :mod:`~sdrest.jobs.pgstore`). A node's listener reads the rows up to that id from the
table and hands them to the store's remote listeners (the bus, which treats them as it treats
its own: deduplicated by id, ordered, replayable by ``Last-Event-ID`` from the table).

*Ephemeral events* (progress, previews, the queue summary) are in no table: the bus hands them
to :meth:`NotifyRelay.broadcast`, which sends them whole. A notification's payload must stay
under 8000 bytes, and a preview (a PNG data URL: a 64x64 latent preview is ~5-15 KB, a
full-size ``--preview tae``/``vae`` one can be megabytes) often does not fit, so an event's JSON
is cut into chunks that are sent by one statement (so one transaction: delivered together, in
one piece of the queue) and put together again by index. An event whose JSON exceeds
:data:`MAX_BROADCAST_BYTES` reaches only the subscribers of the process that made it.

*Own events*: each payload names the store instance that sent it (:attr:`NotifyRelay.node_id`,
random per process); a node skips its own, which its bus already published.

*The listening connection* is one connection of its own (not the pool's: a pooled connection is
lent to anyone), in autocommit mode, read by one daemon thread. If it drops, the thread connects
again with a growing pause and then reads every event committed since the last one it saw
(catch-up), so no persisted event is lost; ephemeral events sent meanwhile are (as they are for a
client that reconnects). The store starts the relay when the first remote listener is added
(an EventBus), so a store without one (a tool, a test) opens no extra connection.

*The channel* is named after the store's schema (``sdrest_`` and a hash of
``current_schema()``): notifications are per database, and two deployments that keep their
tables in two schemas of one database must not hear each other's events.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import conninfo, sql

from sdrest.jobs.eventlog import Cursor, JobStoreError, dumps
from sdrest.jobs.records import Event
from sdrest.jobs.store import redact_url

log = logging.getLogger("sdrest.jobs")

#: The channel, as an SQL expression (evaluated on the session, so it follows its search_path).
CHANNEL_SQL = "'sdrest_' || left(md5(current_schema()), 16)"

#: Characters of an ephemeral event's JSON per notification (PostgreSQL's payload limit is 8000
#: bytes; the JSON is ASCII, and the header takes under 80).
CHUNK_CHARS = 7800

#: The largest ephemeral event (its JSON) sent to other nodes; larger ones stay on their node.
MAX_BROADCAST_BYTES = 4 * 1024 * 1024

#: Persisted events read from the table per query (a catch-up may be long).
READ_PAGE = 1000

#: Seconds between reconnection attempts: doubled after each failure, up to the second value.
RECONNECT_PAUSE = (0.1, 5.0)

#: Seconds the listener waits for a notification before it looks at its stop flag again (a stop
#: normally wakes it at once with a notification of its own).
IDLE_WAKE = 5.0

#: What an ephemeral event's notifications carry of it (its id is None).
_SENT_FIELDS = ("type", "job_id", "owner", "data", "created_at")

#: Incomplete chunked events kept per node while their other chunks are on the way.
_MAX_PARTIAL = 16

#: What the listening connection adds to the store's URL where the URL does not say otherwise:
#: a name to spot it in pg_stat_activity, and TCP keep-alives so that a silent network cut is
#: noticed (in about a minute) instead of waiting for notifications forever.
_LISTEN_DEFAULTS = {
    "application_name": "sdrest-events",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

EventsAfter = Callable[..., list[Event]]


class NotifyRelay:
    """Sends this store's events to the other processes on its database, and hands theirs to
    ``deliver`` (see the module docstring).

    ``connection()`` lends a pooled connection (for sending); ``events_after`` and
    ``last_event_id`` are the store's; ``deliver(events)`` calls the store's remote listeners,
    from the relay's thread.
    """

    def __init__(
        self,
        url: str,
        *,
        connection: Callable[[], contextlib.AbstractContextManager[psycopg.Connection[Any]]],
        events_after: EventsAfter,
        last_event_id: Callable[[], int],
        deliver: Callable[[Iterable[Event]], None],
        connect_timeout: float = 10.0,
    ) -> None:
        #: This store instance's name in its notifications (random: one per process and store).
        self.node_id = uuid.uuid4().hex
        self._url = url
        self._where = redact_url(url)
        self._connection = connection
        self._events_after = events_after
        self._last_event_id = last_event_id
        self._deliver = deliver
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seq = itertools.count()
        self._broadcast_failing = False
        # Owned by the listening thread once it runs:
        self._cursor = 0  # every persisted event up to here was handed on (or was ours)
        self._partial: dict[tuple[str, int], dict[int, str]] = {}

    # -- sending --------------------------------------------------------------------------------

    def announce(self, cursor: Cursor, event: Event) -> None:
        """Inside the transaction that appends ``event``: notify its id (sent at the commit)."""
        cursor.execute(f"SELECT pg_notify({CHANNEL_SQL}, ?)", (f"e {self.node_id} {event.id}",))

    def broadcast(self, event: Event) -> None:
        """Send an ephemeral event to the other processes; never raises (the event has been
        published here already, and a database outage must not stop a job's progress)."""
        if self._stop.is_set():
            return  # the store is closing
        try:
            text = dumps({name: getattr(event, name) for name in _SENT_FIELDS})
        except (TypeError, ValueError) as exc:
            log.warning("event %s not sent to other nodes: %s", event.type, exc)
            return
        if len(text) > MAX_BROADCAST_BYTES:
            log.debug("event %s not sent to other nodes: %d bytes", event.type, len(text))
            return
        seq = next(self._seq)
        chunks = [text[start : start + CHUNK_CHARS] for start in range(0, len(text), CHUNK_CHARS)]
        payloads = [f"m {self.node_id} {seq} {index} {len(chunks)} {chunk}" for index, chunk in enumerate(chunks)]
        try:
            with self._connection() as conn:
                # One statement, so one transaction: its notifications are queued together.
                conn.execute(f"SELECT pg_notify({CHANNEL_SQL}, chunk) FROM unnest(%s::text[]) AS chunk", (payloads,))
        except (psycopg.Error, JobStoreError) as exc:
            if not self._broadcast_failing:  # once per outage, not once per progress step
                log.warning("events cannot reach other nodes through %s: %s", self._where, str(exc).strip())
            self._broadcast_failing = True
            return
        if self._broadcast_failing:
            log.info("events reach other nodes through %s again", self._where)
            self._broadcast_failing = False

    # -- listening ------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (idempotent; nothing after :meth:`close`). The first connection is made here,
        so that every event committed after this returns is notified to this node; if it
        fails, the thread keeps trying."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._listen()
                self._cursor = self._last_event_id()
            except (psycopg.Error, JobStoreError) as exc:
                log.warning("cannot listen for other nodes' events at %s (will retry): %s", self._where, exc)
                if conn is not None:
                    conn.close()
                conn = None
                self._cursor = -1  # unknown: the first connection reads where the table is
            self._thread = threading.Thread(
                target=self._run, args=(conn,), name=f"sdrest-events-{self.node_id[:8]}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop listening and wait for the thread (idempotent). Call before the pool closes:
        the stop is a notification sent through it, which wakes the thread at once."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        try:
            with self._connection() as conn:
                conn.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", (f"s {self.node_id}",))
        except (psycopg.Error, JobStoreError):
            pass  # the thread sees the stop flag after its next wait
        thread.join(timeout=IDLE_WAKE + self._connect_timeout + 5.0)
        if thread.is_alive():
            log.warning("the event listener of %s did not stop", self._where)

    def _listen(self) -> psycopg.Connection[Any]:
        params = conninfo.conninfo_to_dict(self._url)
        extra = {key: value for key, value in _LISTEN_DEFAULTS.items() if key not in params}
        target = conninfo.make_conninfo(self._url, connect_timeout=max(1, round(self._connect_timeout)), **extra)
        conn = psycopg.connect(target, autocommit=True)
        try:
            row = conn.execute(f"SELECT {CHANNEL_SQL}").fetchone()
            assert row is not None
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, conn: psycopg.Connection[Any] | None) -> None:
        pause = RECONNECT_PAUSE[0]
        try:
            while not self._stop.is_set():
                if conn is None:
                    try:
                        conn = self._listen()
                        self._catch_up()
                    except (psycopg.Error, JobStoreError) as exc:
                        if conn is not None:
                            conn.close()
                            conn = None
                        log.debug("listening for events at %s failed: %s", self._where, str(exc).strip())
                        self._stop.wait(pause)
                        pause = min(pause * 2, RECONNECT_PAUSE[1])
                        continue
                    log.info("listening for other nodes' events at %s again", self._where)
                try:
                    for notify in conn.notifies(timeout=IDLE_WAKE):
                        if not self._handle(notify.payload):
                            return
                        pause = RECONNECT_PAUSE[0]
                except Exception as exc:
                    if self._stop.is_set():
                        return
                    if isinstance(exc, (psycopg.Error, JobStoreError)):
                        log.warning(
                            "lost the connection that listens for other nodes' events at %s (reconnecting): %s",
                            self._where,
                            str(exc).strip(),
                        )
                    else:  # a listener that stopped for good would leave subscribers to their timeouts
                        log.exception("the listener for other nodes' events failed (starting again)")
                    conn.close()
                    conn = None
                    self._partial.clear()  # the rest of those chunks went with the connection
                    self._stop.wait(pause)
                    pause = min(pause * 2, RECONNECT_PAUSE[1])
        finally:
            if conn is not None:
                conn.close()

    def _catch_up(self) -> None:
        """After (re)connecting, and before the first notification: what was committed meanwhile."""
        if self._cursor < 0:
            self._cursor = self._last_event_id()
        else:
            self._read_through(None)

    def _handle(self, payload: str) -> bool:
        """Act on one notification; False when it is this relay's stop."""
        kind, _, rest = payload.partition(" ")
        node, _, rest = rest.partition(" ")
        try:
            if kind == "e":
                event_id = int(rest)
                if node == self.node_id:
                    # Published by our own bus; every earlier id was notified before it.
                    self._cursor = max(self._cursor, event_id)
                elif event_id > self._cursor:
                    self._read_through(event_id)
            elif kind == "m":
                if node != self.node_id:
                    self._chunk(node, rest)
            elif kind == "s":
                return node != self.node_id
            else:
                log.debug("unknown event notification %.40r", payload)
        except ValueError:
            log.debug("malformed event notification %.40r", payload)
        return True

    def _read_through(self, up_to: int | None) -> None:
        """Hand on the persisted events after the cursor (through ``up_to``: not beyond, so that
        an ephemeral event notified after it comes after it), page by page."""
        while True:
            page = self._events_after(self._cursor, limit=READ_PAGE, up_to=up_to)
            if page:
                self._deliver(page)
                last = page[-1].id
                assert last is not None
                self._cursor = last
            if len(page) < READ_PAGE:
                break
        if up_to is not None:
            self._cursor = max(self._cursor, up_to)  # the ids in between were purged

    def _chunk(self, node: str, rest: str) -> None:
        seq, index, count, text = rest.split(" ", 3)
        key = (node, int(seq))
        parts = self._partial.setdefault(key, {})
        parts[int(index)] = text
        if len(parts) < int(count):
            while len(self._partial) > _MAX_PARTIAL:  # never completed (cannot happen: one transaction)
                del self._partial[next(iter(self._partial))]
            return
        del self._partial[key]
        try:
            fields = json.loads("".join(parts[position] for position in range(int(count))))
            event = Event(id=None, **{name: fields[name] for name in _SENT_FIELDS})
        except (KeyError, TypeError, ValueError):
            log.debug("malformed event from node %s", node)
            return
        self._deliver([event])
