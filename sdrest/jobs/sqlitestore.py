"""The embedded job store: one SQLite file holds every job and every persisted event.

Why SQLite: the server must survive ``kill -9`` at any moment without losing anything it has
acknowledged, it runs as a single process, and it needs ordered queries (the queue) plus
transactions (claiming a job). Every method that changes state commits before it returns, so
once an HTTP thread has answered "queued", the job is on disk.

Concurrency design
------------------
One connection guarded by one lock, WAL, explicit transactions: :mod:`sdrest.sqlitedb` says why.
Writes use ``BEGIN IMMEDIATE``, so a second process on the same file (a CLI, a second store in
tests) is serialised by SQLite itself: :meth:`SqliteJobStore.claim_next` is atomic across connections
too, not only across threads.

*WAL journal*: readers never block the writer and vice versa (relevant when another process
reads), and a commit is one append to the log. With ``synchronous=FULL`` (the default) each
commit is fsynced, so committed jobs survive power loss as well as ``kill -9``; progress updates,
which are frequent and worthless after a crash, skip that fsync (see :meth:`update_progress`).

Events
------
Lifecycle events are appended in the same transaction as the change they describe; event ids
come from AUTOINCREMENT, which never reuses one, and grow in commit order because writes are
serialised. The SQL shared with the PostgreSQL backend is :class:`~sdrest.jobs.sqlstore.SqlJobStore`;
the interface and its rules are in :mod:`sdrest.jobs.store`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sdrest.jobs.eventlog import Cursor, JobRef, JobStoreError, JobStoreUnavailable, Transaction, dumps
from sdrest.jobs.records import Event, Job
from sdrest.jobs.sqlstore import JOB_COLUMNS, RUN_ORDER, SqlJobStore
from sdrest.jobs.store import SchemaVersionError, check_progress, preferred_index
from sdrest.sqlitedb import MEMORY, Database, VersionTable

log = logging.getLogger("sdrest.jobs")

# Each migration is a list of statements (no executescript: it would commit the transaction
# the migration runs in). Never edit a released migration; append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE jobs (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            id           TEXT    NOT NULL UNIQUE,
            kind         TEXT    NOT NULL,
            status       TEXT    NOT NULL CHECK (status IN
                             ('queued', 'running', 'completed', 'failed', 'cancelled')),
            owner        TEXT,
            priority     INTEGER NOT NULL DEFAULT 0,
            params       TEXT    NOT NULL,
            created_at   REAL    NOT NULL,
            started_at   REAL,
            finished_at  REAL,
            progress     TEXT    NOT NULL,
            timings      TEXT    NOT NULL DEFAULT '{}',
            error        TEXT,
            result       TEXT,
            attempts     INTEGER NOT NULL DEFAULT 0
        )
        """,
        # The queue order; also serves "how many queued jobs are ahead of this one".
        "CREATE INDEX jobs_queue ON jobs (status, priority DESC, seq)",
        "CREATE INDEX jobs_owner ON jobs (owner, seq)",
        "CREATE INDEX jobs_finished ON jobs (status, finished_at)",
        # AUTOINCREMENT: event ids are SSE ids, so they must never be reused, even after purges.
        """
        CREATE TABLE events (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            type        TEXT NOT NULL,
            job_id      TEXT REFERENCES jobs (id) ON DELETE CASCADE,
            owner       TEXT,
            data        TEXT NOT NULL,
            created_at  REAL NOT NULL
        )
        """,
        "CREATE INDEX events_job ON events (job_id, id)",
    ),
    (
        # Server crashes a job lived through (attempts also counts graceful stops, which are
        # never the job's fault and are not bounded).
        "ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # How often a job for a model that was not loaded let a later job for a loaded model run
        # first (see SqliteJobStore.claim_next); bounded by --model-overtake-limit.
        "ALTER TABLE jobs ADD COLUMN bypassed INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Which worker holds a running job and until when (see SqlJobStore.heartbeat), and a
        # stop that another node asked of it; the workers and their heartbeats.
        "ALTER TABLE jobs ADD COLUMN worker TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_until REAL",
        "ALTER TABLE jobs ADD COLUMN stop TEXT",
        # Worker crashes a job went through (--workers: one more try on another worker).
        "ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX jobs_worker ON jobs (worker, status)",
        """
        CREATE TABLE workers (
            id            TEXT PRIMARY KEY,
            instance      TEXT NOT NULL,
            info          TEXT NOT NULL,
            started_at    REAL NOT NULL,
            heartbeat_at  REAL NOT NULL
        )
        """,
    ),
    (
        # Model downloads, one row per download and host (see sdrest.jobs.downloads).
        """
        CREATE TABLE downloads (
            seq              INTEGER PRIMARY KEY AUTOINCREMENT,
            id               TEXT    NOT NULL,
            host             TEXT    NOT NULL,
            status           TEXT    NOT NULL CHECK (status IN
                                 ('queued', 'downloading', 'verifying', 'completed', 'failed', 'cancelled')),
            owner            TEXT,
            request          TEXT    NOT NULL,
            join_key         TEXT    NOT NULL,
            files            TEXT    NOT NULL,
            bytes_done       INTEGER NOT NULL DEFAULT 0,
            bytes_total      INTEGER,
            bytes_per_second REAL    NOT NULL DEFAULT 0,
            error            TEXT,
            created_at       REAL    NOT NULL,
            started_at       REAL,
            finished_at      REAL,
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

# The model file a queued job needs loaded (NULL: whatever is loaded, or none, e.g. an upscale).
_JOB_MODEL_SQL = (
    "COALESCE(json_extract(jobs.params, '$.model_path'),"
    " json_extract(jobs.params, '$.model_options.diffusion_model_path'))"
)


#: The oldest SQLite the job store runs on.
MIN_SQLITE = (3, 35, 0)


class SqliteJobStore(SqlJobStore):
    """Jobs and events in one SQLite file; safe to share between threads.

    ``path`` may be ``":memory:"`` for throwaway stores (no WAL, nothing survives).
    ``synchronous`` is SQLite's setting for ordinary commits: ``"FULL"`` (default) survives
    power loss, ``"NORMAL"`` only process crashes (``kill -9``) but commits faster.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            # INSERT ... RETURNING (the shared SQL) came with 3.35; fail at start, not at the first job.
            raise JobStoreError(
                f"the job store needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; "
                f"this Python's sqlite3 module has {sqlite3.sqlite_version}"
            )
        super().__init__(clock)
        self._db = Database(
            path,
            closed_error=lambda: JobStoreError("the job store is closed"),
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            foreign_keys=True,
            what="the job store",
            unavailable=JobStoreUnavailable,
        )
        self.path = self._db.path
        self.wal = self._db.wal
        if not self.wal and self.path != MEMORY:
            log.warning("SQLite refused WAL for %s", path)
        try:
            applied = self._db.migrate(_MIGRATIONS, ledger=VersionTable(clock), too_new=self._too_new)
        except BaseException:
            self._db.close()
            raise
        for version in applied:
            log.info("job store %s: schema migrated to version %d", self.path, version)

    def _too_new(self, found: int, known: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"{self.path} has job schema version {found}; this sdrest knows only up to "
            f"{known} (was it written by a newer version?)"
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self) -> contextlib.AbstractContextManager[Cursor]:
        return self._db.read()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Transaction]:
        """A write transaction (BEGIN IMMEDIATE, under the connection's lock); its events reach
        the listeners after the commit, outside the lock."""
        with self._db.write() as cursor:
            transaction = Transaction(cursor)
            yield transaction
        self._notify(transaction.events)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        return self._db.query(sql, args)

    def _insert_event(self, tx: Transaction, type_: str, job: Job | JobRef, data: dict[str, Any]) -> Event:
        now = self._clock()
        cursor = tx.cursor.execute(
            "INSERT INTO events (type, job_id, owner, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (type_, job.id, job.owner, dumps(data), now),
        )
        event = Event(
            id=cursor.lastrowid,  # type: ignore[attr-defined]  # an sqlite3 cursor
            type=type_,
            job_id=job.id,
            owner=job.owner,
            data=data,
            created_at=now,
        )
        tx.events.append(event)
        return event

    def last_event_id(self) -> int:
        """The highest event id ever handed out (0 if none), even if that event was purged."""
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return int(rows[0][0]) if rows else 0

    # -- claims and progress ----------------------------------------------------------------

    def claim_next(
        self,
        *,
        loaded: Iterable[str] | None = None,
        overtake_limit: int = 0,
        worker: str | None = None,
        lease: float | None = None,
    ) -> Job | None:
        """Take the next queued job and mark it running; None when the queue is empty.

        Model-aware scheduling: given the model files the worker has ``loaded``, the first job
        of the head's priority (in run order) that needs no other model runs first
        (:func:`~sdrest.jobs.store.preferred_index`); 0 or no ``loaded``: strict run order.

        The select and the update share one IMMEDIATE transaction, so two callers (threads or
        processes) can never claim the same job.
        """
        with self._write() as tx:
            head = tx.cursor.execute(
                f"{self._QUEUE_CTE} SELECT seq, priority FROM queue ORDER BY {RUN_ORDER} LIMIT 1"
            ).fetchone()
            if head is None:
                return None
            seq = head[0]
            if loaded is not None and overtake_limit > 0:
                seq = self._prefer_loaded(tx, head[1], set(loaded), overtake_limit)
            row = tx.cursor.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE seq = ?", (seq,)).fetchone()
            return self._claim(tx, row, worker, lease)

    def _prefer_loaded(self, tx: Transaction, priority: int, loaded: set[str], limit: int) -> int:
        """The seq claim_next runs among the queued jobs of ``priority`` (see preferred_index)."""
        rows = tx.cursor.execute(
            f"{self._QUEUE_CTE} SELECT seq, model, bypassed FROM (SELECT queue.seq AS seq,"
            f" queue.priority AS priority, queue.turn AS turn, queue.last_served AS last_served,"
            f" {_JOB_MODEL_SQL} AS model, jobs.bypassed AS bypassed FROM queue JOIN jobs ON jobs.seq = queue.seq"
            f" WHERE queue.priority = ?) ORDER BY {RUN_ORDER}",
            (priority,),
        ).fetchall()
        index = preferred_index([(model, bypassed) for _, model, bypassed in rows], loaded, limit)
        ahead = [row[0] for row in rows[:index]]
        if ahead:
            tx.cursor.execute(
                f"UPDATE jobs SET bypassed = bypassed + 1 WHERE seq IN ({', '.join('?' * len(ahead))})", ahead
            )
        return int(rows[index][0])

    def update_progress(
        self, job_id: str, *, step: int | None = None, steps: int | None = None, stage: str | None = None
    ) -> bool:
        """Record a running job's progress; returns False if the job is not running.

        Called per sampling step, so it is one UPDATE and no event row (the caller sends
        progress to subscribers as ephemeral events). It also skips the fsync: after a crash
        the job is interrupted anyway and its last progress is worthless, while an fsync per
        step would cost more than the step on fast GPUs. The update still reaches the WAL, so
        it survives ``kill -9`` like everything else.
        """
        fields = check_progress(step, steps, stage)
        with self._db.lock, self._db.guard():
            conn = self._db.connection()
            relax = self.wal and self._db.synchronous in ("FULL", "EXTRA")
            if relax:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                cursor = conn.execute(
                    "UPDATE jobs SET progress = json_patch(progress, ?) WHERE id = ? AND status = 'running'",
                    (dumps(fields), job_id),
                )
            finally:
                if relax:
                    conn.execute(f"PRAGMA synchronous={self._db.synchronous}")
            return cursor.rowcount > 0

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Not needed for durability: every commit is."""
        self._db.close()

    @property
    def closed(self) -> bool:
        return self._db.closed
