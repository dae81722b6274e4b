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
Lifecycle events are appended in the same transaction as the change they describe; the event
log itself (reading, purging, listeners) is :class:`~sdrest.jobs.eventlog.EventLog`, which
:class:`SqliteJobStore` extends. The interface and the rules shared with the PostgreSQL backend
are in :mod:`sdrest.jobs.store`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sdrest.jobs.eventlog import EventLog, JobStoreError, Transaction, dumps, owner_clause
from sdrest.jobs.records import (
    Event,
    EventType,
    Job,
    JobStatus,
    empty_progress,
)
from sdrest.jobs.store import (
    DEFAULT_MAX_INTERRUPTIONS,
    FINISHED_SQL,
    JOB_COLUMNS,
    RUN_ORDER,
    SchemaVersionError,
    check_error,
    check_new_job,
    check_outcome,
    check_page,
    check_progress,
    interrupted_error,
    job_from_row,
    preferred_index,
    queue_cte,
    requeued_data,
    status_values,
)
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
)

#: The schema version this code writes.
SCHEMA_VERSION = len(_MIGRATIONS)

_EVENT_COLUMNS = "id, type, job_id, owner, data, created_at"

_QUEUE_CTE = queue_cte("IS")
# The model file a queued job needs loaded (NULL: whatever is loaded, or none, e.g. an upscale).
_JOB_MODEL_SQL = ("COALESCE(json_extract(jobs.params, '$.model_path'),"
                  " json_extract(jobs.params, '$.model_options.diffusion_model_path'))")

# Inside SqliteJobStore, `list` names the method (for type checkers), so annotations use these.
_Jobs = list[Job]
_Events = list[Event]
_Strings = list[str]
_Anys = list[Any]
_Rows = list[tuple]


class SqliteJobStore(EventLog):
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
        super().__init__(Database(path, closed_error=lambda: JobStoreError("the job store is closed"),
                                  synchronous=synchronous, busy_timeout=busy_timeout, foreign_keys=True), clock)
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
        return SchemaVersionError(f"{self.path} has job schema version {found}; this sdrest knows only up to "
                                  f"{known} (was it written by a newer version?)")

    # -- plumbing ---------------------------------------------------------------------------

    def schema_version(self) -> int:
        return self._query("SELECT MAX(version) FROM schema_version")[0][0] or 0

    @staticmethod
    def _select_job(cursor: sqlite3.Cursor, job_id: str) -> Job | None:
        row = cursor.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    # -- jobs -------------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               priority: int = 0) -> Job:
        """Queue a new job and append its "queued" event, in one transaction."""
        params_json = check_new_job(kind, params, priority)
        job = Job(id=str(uuid.uuid4()), seq=0, kind=kind, status=JobStatus.QUEUED, owner=owner,
                  priority=priority, params=json.loads(params_json), created_at=self._clock())
        with self._write() as tx:
            tx.cursor.execute(
                "INSERT INTO jobs (id, kind, status, owner, priority, params, created_at,"
                " progress, timings, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 0)",
                (job.id, kind, job.status.value, owner, priority, params_json, job.created_at,
                 dumps(job.progress)),
            )
            assert tx.cursor.lastrowid is not None  # an INSERT always sets it
            job.seq = tx.cursor.lastrowid
            self._insert_event(tx, EventType.QUEUED.value, job,
                               {"status": "queued", "kind": kind, "priority": priority})
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._query(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    def list(
        self,
        *,
        statuses: Iterable[JobStatus | str] | None = None,
        owner: str | None = None,
        kind: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> tuple[_Jobs, int]:
        """One page of jobs (by creation order) and the total number matching the filters.

        ``owner=None`` means any owner. ``limit=None`` means no limit.
        """
        check_page(limit, offset)
        where: _Strings = []
        args: _Anys = []
        if statuses is not None:
            values = status_values(statuses)
            if not values:
                return [], 0
            where.append(f"status IN ({', '.join('?' * len(values))})")
            args.extend(values)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        where_sql = f"WHERE {' AND '.join(where)}" if where else ""
        order = "DESC" if newest_first else "ASC"
        with self._read() as cur:
            total = cur.execute(f"SELECT COUNT(*) FROM jobs {where_sql}", args).fetchone()[0]
            rows = cur.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs {where_sql} ORDER BY seq {order} LIMIT ? OFFSET ?",
                [*args, -1 if limit is None else limit, offset],
            ).fetchall()
        return [job_from_row(row) for row in rows], total

    def queued_ids(self) -> _Strings:
        """Queued job ids in the order they will run (see :data:`RUN_ORDER`)."""
        rows = self._query(f"{_QUEUE_CTE} SELECT id FROM queue ORDER BY {RUN_ORDER}")
        return [row[0] for row in rows]

    def queue_position(self, job_id: str) -> int | None:
        """How many queued jobs run before this one (0: next), or None if it is not queued."""
        row = self._query(
            f"{_QUEUE_CTE}, ordered AS (SELECT id, ROW_NUMBER() OVER (ORDER BY {RUN_ORDER}) - 1 AS position"
            " FROM queue) SELECT position FROM ordered WHERE id = ?", (job_id,))
        return row[0][0] if row else None

    def queued_count(self, owner: str | None) -> int:
        """How many jobs ``owner`` has waiting (None: the jobs without an owner)."""
        clause, args = owner_clause({owner})
        return self._query(f"SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND {clause}", args)[0][0]

    def claim_next(self, *, loaded: Iterable[str] | None = None, overtake_limit: int = 0) -> Job | None:
        """Take the next queued job and mark it running; None when the queue is empty.

        Model-aware scheduling: given the model files the worker has ``loaded``, the first job
        of the head's priority (in run order) that needs no other model runs first, so a loaded
        model is used before it is swapped out. Each job it overtakes counts that; a job
        overtaken ``overtake_limit`` times is overtaken no more (0 or no ``loaded``: strict run
        order). So no job waits more than ``overtake_limit`` extra jobs for its model's turn.

        The select and the update share one IMMEDIATE transaction, so two callers (threads or
        processes) can never claim the same job.
        """
        with self._write() as tx:
            head = tx.cursor.execute(
                f"{_QUEUE_CTE} SELECT seq, priority FROM queue ORDER BY {RUN_ORDER} LIMIT 1").fetchone()
            if head is None:
                return None
            seq = head[0]
            if loaded is not None and overtake_limit > 0:
                seq = self._prefer_loaded(tx, head[1], set(loaded), overtake_limit)
            row = tx.cursor.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE seq = ?", (seq,)).fetchone()
            job = job_from_row(row)
            job.status = JobStatus.RUNNING
            job.started_at = self._clock()
            job.attempts += 1
            job.progress = empty_progress()
            tx.cursor.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, attempts = ?, progress = ?"
                " WHERE seq = ?",
                (job.started_at, job.attempts, dumps(job.progress), job.seq),
            )
            self._insert_event(tx, EventType.STARTED.value, job,
                               {"status": "running", "kind": job.kind, "attempt": job.attempts})
        return job

    @staticmethod
    def _prefer_loaded(tx: Transaction, priority: int, loaded: set[str], limit: int) -> int:
        """The seq claim_next runs among the queued jobs of ``priority`` (see preferred_index)."""
        rows = tx.cursor.execute(
            f"{_QUEUE_CTE} SELECT seq, model, bypassed FROM (SELECT queue.seq AS seq, queue.priority AS priority,"
            f" queue.turn AS turn, queue.last_served AS last_served, {_JOB_MODEL_SQL} AS model,"
            " jobs.bypassed AS bypassed FROM queue JOIN jobs ON jobs.seq = queue.seq WHERE queue.priority = ?)"
            f" ORDER BY {RUN_ORDER}", (priority,)).fetchall()
        index = preferred_index([(model, bypassed) for _, model, bypassed in rows], loaded, limit)
        ahead = [row[0] for row in rows[:index]]
        if ahead:
            tx.cursor.execute(
                f"UPDATE jobs SET bypassed = bypassed + 1 WHERE seq IN ({', '.join('?' * len(ahead))})", ahead)
        return int(rows[index][0])

    def update_progress(self, job_id: str, *, step: int | None = None, steps: int | None = None,
                        stage: str | None = None) -> bool:
        """Record a running job's progress; returns False if the job is not running.

        Called per sampling step, so it is one UPDATE and no event row (the caller sends
        progress to subscribers as ephemeral events). It also skips the fsync: after a crash
        the job is interrupted anyway and its last progress is worthless, while an fsync per
        step would cost more than the step on fast GPUs. The update still reaches the WAL, so
        it survives ``kill -9`` like everything else.
        """
        fields = check_progress(step, steps, stage)
        paths = [f"'$.{key}', ?" for key in fields]
        args = list(fields.values())
        sql = (f"UPDATE jobs SET progress = json_set(progress, {', '.join(paths)})"
               if paths else "UPDATE jobs SET progress = progress")
        with self._lock:
            conn = self._db.connection()
            relax = self.wal and self._db.synchronous in ("FULL", "EXTRA")
            if relax:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                cursor = conn.execute(f"{sql} WHERE id = ? AND status = 'running'",
                                      (*args, job_id))
            finally:
                if relax:
                    conn.execute(f"PRAGMA synchronous={self._db.synchronous}")
            return cursor.rowcount > 0

    def _finish(self, job_id: str, status: JobStatus, assignments: dict[str, Any],
                event_type: EventType, event_data: dict[str, Any]) -> Job | None:
        """running -> ``status`` with the given column values, plus the event; else None."""
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id)
            if job is None or job.status is not JobStatus.RUNNING:
                return None
            columns = {"status": status.value, "finished_at": self._clock(), **assignments}
            tx.cursor.execute(
                f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in columns)} WHERE seq = ?",
                (*columns.values(), job.seq),
            )
            job = self._select_job(tx.cursor, job_id)
            self._insert_event(tx, event_type.value, job, {"status": status.value, **event_data})
        return job

    def complete(self, job_id: str, result: dict[str, Any],
                 timings: dict[str, float]) -> Job | None:
        """running -> completed; None if the job was not running (e.g. cancelled meanwhile)."""
        check_outcome(result, timings)
        return self._finish(job_id, JobStatus.COMPLETED,
                            {"result": dumps(result), "timings": dumps(timings)},
                            EventType.COMPLETED, {"result": result, "timings": timings})

    def fail(self, job_id: str, error: dict[str, Any],
             timings: dict[str, float] | None = None) -> Job | None:
        """running -> failed; None if the job was not running. ``error`` needs code and message."""
        check_error(error)
        assignments = {"error": dumps(error)}
        data: dict[str, Any] = {"error": error}
        if timings is not None:
            assignments["timings"] = dumps(timings)
            data["timings"] = timings
        return self._finish(job_id, JobStatus.FAILED, assignments, EventType.FAILED, data)

    def cancel(self, job_id: str) -> Job | None:
        """queued/running -> cancelled. Returns the job as it was *before* (so the caller knows
        whether a worker must be stopped), or None if it is unknown or already finished."""
        with self._write() as tx:
            before = self._select_job(tx.cursor, job_id)
            if before is None or before.finished:
                return None
            tx.cursor.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE seq = ?",
                (self._clock(), before.seq),
            )
            self._insert_event(tx, EventType.CANCELLED.value, before,
                               {"status": "cancelled", "previous_status": before.status.value})
        return before

    def requeue(self, job_id: str) -> bool:
        """running -> queued, keeping its place (seq) and priority; False if it was not running.

        For a supervisor that lost its worker for reasons that are not the job's fault.
        """
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id)
            if job is None or job.status is not JobStatus.RUNNING:
                return False
            self._put_back(tx, job, reason="requeued")
        return True

    def _put_back(self, tx: Transaction, job: Job, *, reason: str) -> None:
        tx.cursor.execute(
            "UPDATE jobs SET status = 'queued', started_at = NULL, progress = ? WHERE seq = ?",
            (dumps(empty_progress()), job.seq),
        )
        self._insert_event(tx, EventType.QUEUED.value, job, requeued_data(job, reason))

    def recover_interrupted(self, *, requeue: bool = True,
                            max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS) -> _Jobs:
        """At start-up: every job still ``running`` was cut off by a server crash; settle each one.

        A server crash is not the job's fault, so with ``requeue`` (the default) the job goes
        back to its place in the queue, as long as it has been interrupted at most
        ``max_interruptions`` times; after that, or without ``requeue``, it fails with code
        "interrupted". (A job whose *worker* crashed failed there and then: it may be poison.)
        Call this only while no worker of this store is running. Returns the affected jobs, as
        they are now.
        """
        affected: _Strings = []
        with self._write() as tx:
            rows = tx.cursor.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' ORDER BY seq"
            ).fetchall()
            for job in map(job_from_row, rows):
                job.interruptions += 1
                tx.cursor.execute("UPDATE jobs SET interruptions = ? WHERE seq = ?",
                                  (job.interruptions, job.seq))
                if requeue and job.interruptions <= max_interruptions:
                    self._put_back(tx, job, reason="interrupted")
                else:
                    error = interrupted_error(job)
                    tx.cursor.execute(
                        "UPDATE jobs SET status = 'failed', finished_at = ?, error = ?"
                        " WHERE seq = ?",
                        (self._clock(), dumps(error), job.seq),
                    )
                    self._insert_event(tx, EventType.FAILED.value, job,
                                       {"status": "failed", "error": error})
                affected.append(job.id)
            jobs = [self._select_job(tx.cursor, job_id) for job_id in affected]
        return [job for job in jobs if job is not None]

    def delete(self, job_id: str) -> Job | None:
        """Remove a finished job and its events; returns it (so its files can go too) or None
        if it is unknown or not finished (cancel it first)."""
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id)
            if job is None or not job.finished:
                return None
            tx.cursor.execute("DELETE FROM jobs WHERE seq = ?", (job.seq,))  # events: CASCADE
        return job

    def purge_finished(self, older_than: float) -> _Jobs:
        """Remove finished jobs whose ``finished_at`` is before ``older_than`` (unix time)."""
        with self._write() as tx:
            rows = tx.cursor.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN {FINISHED_SQL}"
                " AND finished_at < ? ORDER BY seq",
                (older_than,),
            ).fetchall()
            tx.cursor.execute(
                f"DELETE FROM jobs WHERE status IN {FINISHED_SQL} AND finished_at < ?",
                (older_than,),
            )
        return [job_from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (every status present, zero included)."""
        counts = {status.value: 0 for status in JobStatus}
        for status, count in self._query("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = count
        return counts

    def queued_by_priority(self) -> dict[int, int]:
        """Number of queued jobs per priority (only priorities that have some)."""
        rows = self._query("SELECT priority, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY priority")
        return dict(rows)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Not needed for durability: every commit is."""
        self._db.close()

    @property
    def closed(self) -> bool:
        return self._db.closed

    def __enter__(self) -> SqliteJobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
