"""The shared job store: jobs and their event log in a PostgreSQL database.

The same semantics as :class:`~sdrest.jobs.sqlitestore.SqliteJobStore` (one conformance suite
runs against both), for a database that several API nodes and workers can share. The policy
both backends follow is in :mod:`sdrest.jobs.store`; this module is the PostgreSQL way of doing it.

Connections
-----------
A psycopg-pool :class:`~psycopg_pool.ConnectionPool` in autocommit mode; each method borrows
a connection for one statement or one explicit transaction, so threads never share one.

Claims
------
``SELECT ... FOR NO KEY UPDATE SKIP LOCKED`` on the job chosen in run order: a job another
claimer holds is passed over rather than waited for, and the lock re-checks ``status =
'queued'`` against the latest committed row, so two claimers (threads, processes or machines)
never get the same job. Row locks are ``NO KEY`` so that they never conflict with the key-share
lock an event's foreign key takes.

Event ids
---------
SSE replay needs ids that grow *in commit order*: a reader that has seen id 11 must never
later find a 10. A plain sequence does not give that (transactions commit in any order), so ids
come from one counter row, incremented in the transaction that appends the event: its row lock
is held until commit, so event-writing transactions commit one after another in id order,
and a reader only ever sees the committed counter (:meth:`last_event_id`). Every transaction
takes its job row locks before the counter, so they cannot deadlock on it. Progress updates
append no event and never touch the counter.

Other processes
---------------
The transaction that appends an event also notifies its id (``NOTIFY``, delivered at the
commit, so in id order) to the other processes on the database, whose stores hand it to their
event buses; ephemeral events travel the same way (:mod:`sdrest.jobs.pgnotify`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg

from sdrest.jobs.eventlog import Cursor, EventListener, JobRef, JobStoreError, JobStoreUnavailable, Transaction, dumps
from sdrest.jobs.pgnotify import NotifyRelay
from sdrest.jobs.records import Event, Job
from sdrest.jobs.sqlstore import JOB_COLUMNS, RUN_ORDER, SqlJobStore, queue_cte
from sdrest.jobs.store import SchemaVersionError, check_progress, preferred_index
from sdrest.pgdb import PgDatabase

log = logging.getLogger("sdrest.jobs")

# Never edit a released migration; append a new one. Version 1 is the SQLite store's schema at
# its version 3 (the same columns), with the event id counter.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE jobs (
            seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id           TEXT    NOT NULL UNIQUE,
            kind         TEXT    NOT NULL,
            status       TEXT    NOT NULL CHECK (status IN
                             ('queued', 'running', 'completed', 'failed', 'cancelled')),
            owner        TEXT,
            priority     INTEGER NOT NULL DEFAULT 0,
            params       TEXT    NOT NULL,
            created_at   DOUBLE PRECISION NOT NULL,
            started_at   DOUBLE PRECISION,
            finished_at  DOUBLE PRECISION,
            progress     TEXT    NOT NULL,
            timings      TEXT    NOT NULL DEFAULT '{}',
            error        TEXT,
            result       TEXT,
            attempts     INTEGER NOT NULL DEFAULT 0,
            interruptions INTEGER NOT NULL DEFAULT 0,
            bypassed     INTEGER NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX jobs_queue ON jobs (status, priority DESC, seq)",
        "CREATE INDEX jobs_owner ON jobs (owner, seq)",
        "CREATE INDEX jobs_finished ON jobs (status, finished_at)",
        """
        CREATE TABLE events (
            id          BIGINT PRIMARY KEY,
            type        TEXT NOT NULL,
            job_id      TEXT REFERENCES jobs (id) ON DELETE CASCADE,
            owner       TEXT,
            data        TEXT NOT NULL,
            created_at  DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE INDEX events_job ON events (job_id, id)",
        # The one row event ids come from (see the module docstring); never reset by purges.
        "CREATE TABLE event_ids (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), last_id BIGINT NOT NULL)",
        "INSERT INTO event_ids (last_id) VALUES (0)",
    ),
    (
        # The SQLite store's version 4: leases, stop requests and the workers.
        "ALTER TABLE jobs ADD COLUMN worker TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION",
        "ALTER TABLE jobs ADD COLUMN stop TEXT",
        "ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX jobs_worker ON jobs (worker, status)",
        """
        CREATE TABLE workers (
            id            TEXT PRIMARY KEY,
            instance      TEXT NOT NULL,
            info          TEXT NOT NULL,
            started_at    DOUBLE PRECISION NOT NULL,
            heartbeat_at  DOUBLE PRECISION NOT NULL
        )
        """,
    ),
    (
        # The SQLite store's version 5: model downloads (see sdrest.jobs.downloads).
        """
        CREATE TABLE downloads (
            seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id               TEXT    NOT NULL,
            host             TEXT    NOT NULL,
            status           TEXT    NOT NULL CHECK (status IN
                                 ('queued', 'downloading', 'verifying', 'completed', 'failed', 'cancelled')),
            owner            TEXT,
            request          TEXT    NOT NULL,
            join_key         TEXT    NOT NULL,
            files            TEXT    NOT NULL,
            bytes_done       BIGINT  NOT NULL DEFAULT 0,
            bytes_total      BIGINT,
            bytes_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,
            error            TEXT,
            created_at       DOUBLE PRECISION NOT NULL,
            started_at       DOUBLE PRECISION,
            finished_at      DOUBLE PRECISION,
            attempts         INTEGER NOT NULL DEFAULT 0,
            UNIQUE (id, host)
        )
        """,
        "CREATE INDEX downloads_queue ON downloads (host, status, seq)",
        "CREATE INDEX downloads_join ON downloads (join_key, status)",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION = len(_MIGRATIONS)

#: pg_advisory_xact_lock key that serialises migrations of nodes starting at once ("sdrest" in ASCII).
_MIGRATION_LOCK = 0x736472657374

# The model file a queued job needs loaded (NULL: whatever is loaded, or none, e.g. an upscale).
# json, not jsonb: it parses any text the SQLite store accepts (jsonb refuses \u0000).
_JOB_MODEL_SQL = (
    "COALESCE(jobs.params::json ->> 'model_path', jobs.params::json #>> '{model_options,diffusion_model_path}')"
)


class PostgresJobStore(SqlJobStore):
    """Jobs and events in a PostgreSQL database; safe to share between threads and processes.

    ``url``: a libpq URL (``postgresql://user@host:5432/db``; a password is better kept in
    ``~/.pgpass`` or ``PGPASSWORD`` than in the URL). ``pool_size``: the most connections this
    store opens. ``connect_timeout``: how long opening waits for the first connection.
    ``wait_timeout``: how long a call waits for a free connection before it raises
    :class:`~sdrest.jobs.JobStoreUnavailable` (as it does while the database is unreachable).
    """

    _QUEUE_CTE = queue_cte("IS NOT DISTINCT FROM")
    _LOCK_ROW = " FOR NO KEY UPDATE"
    _KEY_SHARE = " FOR KEY SHARE"
    _NO_LIMIT = None
    _CLAIM_LOCK = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        pool_size: int = 16,
        connect_timeout: float = 10.0,
        wait_timeout: float = 10.0,
    ) -> None:
        super().__init__(clock)
        # This store's events to and from the other processes on the database (LISTEN/NOTIFY).
        self._relay = NotifyRelay(
            url,
            connection=self._connection,
            events_after=self.events_after,
            last_event_id=self.last_event_id,
            deliver=self._notify_remote,
            connect_timeout=connect_timeout,
        )
        # The pool, its connection checks and migrations are sdrest.pgdb's (shared with the auth store).
        self._db = PgDatabase(
            url,
            what="the job store",
            error=JobStoreError,
            pool_name="sdrest-jobs",
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            wait_timeout=wait_timeout,
            unavailable=JobStoreUnavailable,
        )
        self.url = self._db.url
        try:
            applied = self._migrate()
        except BaseException:
            self.close()
            raise
        for version in applied:
            log.info("job store %s: schema migrated to version %d", self.url, version)

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def database(self) -> PgDatabase:
        """The pool this store runs on, shared with the image store (sdrest.images.pgimages)."""
        return self._db

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return self._db.connection()

    def _read(self) -> contextlib.AbstractContextManager[Cursor]:
        return self._db.read()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Transaction]:
        """A transaction; committed on success, rolled back on any exception. Listeners run
        after the commit, so a slow or re-entrant listener holds no lock and no connection."""
        with self._db.write() as cursor:
            transaction = Transaction(cursor)
            yield transaction
        self._notify(transaction.events)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        return self._db.query(sql, args)

    def _lock_join_key(self, tx: Transaction, join_key: str) -> None:
        # Two nodes asked for the same file at once: the second waits, then joins the first.
        tx.cursor.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (join_key,))

    def _migrate(self) -> list[int]:
        def too_new(current: int, known: int) -> SchemaVersionError:
            return SchemaVersionError(
                f"{self.url} has job schema version {current}; this sdrest knows only "
                f"up to {known} (was it written by a newer version?)"
            )

        return self._db.migrate(
            _MIGRATIONS, ledger="schema_version", lock=_MIGRATION_LOCK, too_new=too_new, clock=self._clock
        )

    def _insert_event(self, tx: Transaction, type_: str, job: Job | JobRef, data: dict[str, Any]) -> Event:
        """Append an event inside ``tx``; takes the id counter's row lock (held to the commit),
        so the caller must hold every row lock it needs already."""
        now = self._clock()
        row = tx.cursor.execute("UPDATE event_ids SET last_id = last_id + 1 RETURNING last_id").fetchone()
        event = Event(id=int(row[0]), type=type_, job_id=job.id, owner=job.owner, data=data, created_at=now)
        tx.cursor.execute(
            "INSERT INTO events (id, type, job_id, owner, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (event.id, type_, job.id, job.owner, dumps(data), now),
        )
        self._relay.announce(tx.cursor, event)  # delivered at the commit, in id order
        tx.events.append(event)
        return event

    def last_event_id(self) -> int:
        """The highest committed event id (0 if none), even if that event was purged."""
        return int(self._query("SELECT last_id FROM event_ids")[0][0])

    def add_remote_listener(self, listener: EventListener) -> None:
        """See :class:`~sdrest.jobs.eventlog.Listeners`; the first one starts listening."""
        super().add_remote_listener(listener)
        self._relay.start()

    def broadcast(self, event: Event) -> None:
        self._relay.broadcast(event)

    # -- claims and progress ------------------------------------------------------------------

    def claim_next(
        self,
        *,
        loaded: Iterable[str] | None = None,
        overtake_limit: int = 0,
        worker: str | None = None,
        lease: float | None = None,
    ) -> Job | None:
        """Take the next queued job and mark it running; None when no queued job is free.

        The choice is the SQLite store's (run order, then :func:`~sdrest.jobs.store.preferred_index`
        among the head priority's jobs); a chosen job that another claimer holds or has just
        taken is passed over and the choice made again without it.
        """
        prefer = loaded is not None and overtake_limit > 0
        loaded_set = set(loaded or ()) if prefer else set()
        passed: list[int] = []
        with self._write() as tx:
            cursor = tx.cursor
            row = None
            while True:
                rows = cursor.execute(
                    f"{self._QUEUE_CTE}, candidates AS (SELECT queue.seq AS seq, queue.priority AS priority,"
                    f" queue.turn AS turn, queue.last_served AS last_served, {_JOB_MODEL_SQL} AS model,"
                    " jobs.bypassed AS bypassed FROM queue JOIN jobs ON jobs.seq = queue.seq"
                    " WHERE queue.seq <> ALL(?))"
                    " SELECT seq, model, bypassed FROM candidates"
                    " WHERE priority = (SELECT MAX(priority) FROM candidates)"
                    f" ORDER BY {RUN_ORDER}",
                    (passed,),
                ).fetchall()
                if not rows:
                    return None
                index = (
                    preferred_index([(model, bypassed) for _, model, bypassed in rows], loaded_set, overtake_limit)
                    if prefer
                    else 0
                )
                seq = rows[index][0]
                row = cursor.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE seq = ? AND status = 'queued' FOR NO KEY UPDATE SKIP LOCKED",
                    (seq,),
                ).fetchone()
                if row is None:
                    passed.append(seq)
                    continue
                ahead = [candidate[0] for candidate in rows[:index]]
                if ahead:  # those still queued and free were overtaken once more
                    cursor.execute(
                        "UPDATE jobs SET bypassed = bypassed + 1 WHERE seq IN (SELECT seq FROM jobs"
                        " WHERE seq = ANY(?) AND status = 'queued' FOR NO KEY UPDATE SKIP LOCKED)",
                        (ahead,),
                    )
                break
            return self._claim(tx, row, worker, lease)

    def update_progress(
        self, job_id: str, *, step: int | None = None, steps: int | None = None, stage: str | None = None
    ) -> bool:
        """Record a running job's progress; returns False if the job is not running.

        One UPDATE, no event row, and no wait for the WAL flush (``synchronous_commit = off``
        for this transaction only): the SQLite store's reasoning, as after a crash the job is
        interrupted anyway and its last progress is worthless.
        """
        fields = check_progress(step, steps, stage)
        with self._connection() as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            cursor = conn.execute(
                "UPDATE jobs SET progress = (progress::jsonb || %s::jsonb)::text WHERE id = %s AND status = 'running'",
                (dumps(fields), job_id),
            )
            return cursor.rowcount > 0

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening for other nodes' events, close the pool's connections (idempotent)."""
        self._relay.close()
        self._db.close()

    @property
    def closed(self) -> bool:
        return self._db.closed
