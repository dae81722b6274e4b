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
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sdrest.jobs.eventlog import (
    JobStoreError,
    Listeners,
    UnknownJobError,
    check_event,
    check_keep_last,
    dumps,
    event_from_row,
    owner_clause,
)
from sdrest.jobs.records import Event, EventType, Job, JobStatus, empty_progress
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
    redact_url,
    requeued_data,
    status_values,
)

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
)

#: The schema version this code writes.
SCHEMA_VERSION = len(_MIGRATIONS)

#: pg_advisory_xact_lock key that serialises migrations of nodes starting at once ("sdrest" in ASCII).
_MIGRATION_LOCK = 0x736472657374

_EVENT_COLUMNS = "id, type, job_id, owner, data, created_at"
_QUEUE_CTE = queue_cte("IS NOT DISTINCT FROM")
# The model file a queued job needs loaded (NULL: whatever is loaded, or none, e.g. an upscale).
# json, not jsonb: it parses any text the SQLite store accepts (jsonb refuses \u0000).
_JOB_MODEL_SQL = ("COALESCE(jobs.params::json ->> 'model_path',"
                  " jobs.params::json #>> '{model_options,diffusion_model_path}')")

# Inside PostgresJobStore, `list` names the method (for type checkers), so annotations use these.
_Jobs = list[Job]
_Events = list[Event]
_Strings = list[str]
_Anys = list[Any]


class _Transaction:
    """A write transaction's cursor and the events to hand to listeners after its commit."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.cursor = cursor
        self.events: _Events = []


class PostgresJobStore(Listeners):
    """Jobs and events in a PostgreSQL database; safe to share between threads and processes.

    ``url``: a libpq URL (``postgresql://user@host:5432/db``; a password is better kept in
    ``~/.pgpass`` or ``PGPASSWORD`` than in the URL). ``pool_size``: the most connections this
    store opens. ``connect_timeout``: how long opening waits for the first connection.
    """

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, pool_size: int = 16,
                 connect_timeout: float = 10.0) -> None:
        self.url = redact_url(url)
        self._clock = clock
        super().__init__()
        self._closed = False
        try:  # one plain connection first: libpq's reason (refused, bad password, no database)
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))).close()
        except psycopg.Error as exc:
            raise JobStoreError(f"cannot connect to the job store at {self.url}: {str(exc).strip()}") from None
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, name="sdrest-jobs",
                                    kwargs={"autocommit": True})
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise JobStoreError(f"cannot connect to the job store at {self.url} "
                                f"within {connect_timeout:g} s") from None
        try:
            applied = self._migrate()
        except BaseException:
            self.close()
            raise
        for version in applied:
            log.info("job store %s: schema migrated to version %d", self.url, version)

    # -- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise JobStoreError("the job store is closed")
        with self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[_Transaction]:
        """A transaction; committed on success, rolled back on any exception. Listeners run
        after the commit, so a slow or re-entrant listener holds no lock and no connection."""
        with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            transaction = _Transaction(cursor)
            yield transaction
        self._notify(transaction.events)

    def _query(self, query: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(query, tuple(args)).fetchall()

    def _migrate(self) -> list[int]:
        known = len(_MIGRATIONS)
        applied = []
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         " version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            if current > known:
                raise SchemaVersionError(f"{self.url} has job schema version {current}; this sdrest knows only "
                                         f"up to {known} (was it written by a newer version?)")
            for version in range(current + 1, known + 1):
                for statement in _MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                             (version, self._clock()))
                applied.append(version)
        return applied

    def schema_version(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    @staticmethod
    def _select_job(cursor: psycopg.Cursor[Any], job_id: str, *, lock: bool = False) -> Job | None:
        lock_sql = " FOR NO KEY UPDATE" if lock else ""
        row = cursor.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s{lock_sql}",
                             (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    # -- jobs ---------------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               priority: int = 0) -> Job:
        params_json = check_new_job(kind, params, priority)
        job = Job(id=str(uuid.uuid4()), seq=0, kind=kind, status=JobStatus.QUEUED, owner=owner,
                  priority=priority, params=json.loads(params_json), created_at=self._clock())
        with self._write() as tx:
            row = tx.cursor.execute(
                "INSERT INTO jobs (id, kind, status, owner, priority, params, created_at, progress, timings, attempts)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '{}', 0) RETURNING seq",
                (job.id, kind, job.status.value, owner, priority, params_json, job.created_at,
                 dumps(job.progress)),
            ).fetchone()
            assert row is not None  # INSERT ... RETURNING returns the row
            job.seq = int(row[0])
            self._insert_event(tx, EventType.QUEUED.value, job,
                               {"status": "queued", "kind": kind, "priority": priority})
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._query(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
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
        check_page(limit, offset)
        where: _Strings = []
        args: _Anys = []
        if statuses is not None:
            values = status_values(statuses)
            if not values:
                return [], 0
            where.append("status = ANY(%s)")
            args.append(values)
        if owner is not None:
            where.append("owner = %s")
            args.append(owner)
        if kind is not None:
            where.append("kind = %s")
            args.append(kind)
        where_sql = f"WHERE {' AND '.join(where)}" if where else ""
        order = "DESC" if newest_first else "ASC"
        with self._connection() as conn, conn.transaction():
            # One snapshot for the page and its total.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            total_row = conn.execute(f"SELECT COUNT(*) FROM jobs {where_sql}", args).fetchone()
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs {where_sql} ORDER BY seq {order} LIMIT %s OFFSET %s",
                [*args, limit, offset],
            ).fetchall()
        total = int(total_row[0]) if total_row else 0
        return [job_from_row(row) for row in rows], total

    def queued_ids(self) -> _Strings:
        rows = self._query(f"{_QUEUE_CTE} SELECT id FROM queue ORDER BY {RUN_ORDER}")
        return [row[0] for row in rows]

    def queue_position(self, job_id: str) -> int | None:
        rows = self._query(
            f"{_QUEUE_CTE}, ordered AS (SELECT id, ROW_NUMBER() OVER (ORDER BY {RUN_ORDER}) - 1 AS position"
            " FROM queue) SELECT position FROM ordered WHERE id = %s", (job_id,))
        return int(rows[0][0]) if rows else None

    def queued_count(self, owner: str | None) -> int:
        clause, args = owner_clause({owner}, "%s")
        return int(self._query(f"SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND {clause}", args)[0][0])

    def claim_next(self, *, loaded: Iterable[str] | None = None, overtake_limit: int = 0) -> Job | None:
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
            while True:
                rows = cursor.execute(
                    f"{_QUEUE_CTE}, candidates AS (SELECT queue.seq AS seq, queue.priority AS priority,"
                    f" queue.turn AS turn, queue.last_served AS last_served, {_JOB_MODEL_SQL} AS model,"
                    " jobs.bypassed AS bypassed FROM queue JOIN jobs ON jobs.seq = queue.seq"
                    " WHERE queue.seq <> ALL(%s))"
                    " SELECT seq, model, bypassed FROM candidates"
                    " WHERE priority = (SELECT MAX(priority) FROM candidates)"
                    f" ORDER BY {RUN_ORDER}", (passed,)).fetchall()
                if not rows:
                    return None
                index = preferred_index([(model, bypassed) for _, model, bypassed in rows],
                                        loaded_set, overtake_limit) if prefer else 0
                seq = rows[index][0]
                row = cursor.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE seq = %s AND status = 'queued'"
                    " FOR NO KEY UPDATE SKIP LOCKED", (seq,)).fetchone()
                if row is None:
                    passed.append(seq)
                    continue
                ahead = [row[0] for row in rows[:index]]
                if ahead:  # those still queued and free were overtaken once more
                    cursor.execute("UPDATE jobs SET bypassed = bypassed + 1 WHERE seq IN (SELECT seq FROM jobs"
                                   " WHERE seq = ANY(%s) AND status = 'queued' FOR NO KEY UPDATE SKIP LOCKED)",
                                   (ahead,))
                break
            job = job_from_row(row)
            job.status = JobStatus.RUNNING
            job.started_at = self._clock()
            job.attempts += 1
            job.progress = empty_progress()
            cursor.execute(
                "UPDATE jobs SET status = 'running', started_at = %s, attempts = %s, progress = %s WHERE seq = %s",
                (job.started_at, job.attempts, dumps(job.progress), job.seq),
            )
            self._insert_event(tx, EventType.STARTED.value, job,
                               {"status": "running", "kind": job.kind, "attempt": job.attempts})
        return job

    def update_progress(self, job_id: str, *, step: int | None = None, steps: int | None = None,
                        stage: str | None = None) -> bool:
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
                (dumps(fields), job_id))
            return cursor.rowcount > 0

    def _finish(self, job_id: str, status: JobStatus, assignments: dict[str, Any],
                event_type: EventType, event_data: dict[str, Any]) -> Job | None:
        """running -> ``status`` with the given column values, plus the event; else None."""
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or job.status is not JobStatus.RUNNING:
                return None
            columns = {"status": status.value, "finished_at": self._clock(), **assignments}
            tx.cursor.execute(
                f"UPDATE jobs SET {', '.join(f'{name} = %s' for name in columns)} WHERE seq = %s",
                (*columns.values(), job.seq),
            )
            job = self._select_job(tx.cursor, job_id)
            self._insert_event(tx, event_type.value, job, {"status": status.value, **event_data})
        return job

    def complete(self, job_id: str, result: dict[str, Any], timings: dict[str, float]) -> Job | None:
        check_outcome(result, timings)
        return self._finish(job_id, JobStatus.COMPLETED, {"result": dumps(result), "timings": dumps(timings)},
                            EventType.COMPLETED, {"result": result, "timings": timings})

    def fail(self, job_id: str, error: dict[str, Any], timings: dict[str, float] | None = None) -> Job | None:
        check_error(error)
        assignments = {"error": dumps(error)}
        data: dict[str, Any] = {"error": error}
        if timings is not None:
            assignments["timings"] = dumps(timings)
            data["timings"] = timings
        return self._finish(job_id, JobStatus.FAILED, assignments, EventType.FAILED, data)

    def cancel(self, job_id: str) -> Job | None:
        with self._write() as tx:
            before = self._select_job(tx.cursor, job_id, lock=True)
            if before is None or before.finished:
                return None
            tx.cursor.execute("UPDATE jobs SET status = 'cancelled', finished_at = %s WHERE seq = %s",
                              (self._clock(), before.seq))
            self._insert_event(tx, EventType.CANCELLED.value, before,
                               {"status": "cancelled", "previous_status": before.status.value})
        return before

    def requeue(self, job_id: str) -> bool:
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or job.status is not JobStatus.RUNNING:
                return False
            self._put_back(tx, job, reason="requeued")
        return True

    def _put_back(self, tx: _Transaction, job: Job, *, reason: str) -> None:
        tx.cursor.execute("UPDATE jobs SET status = 'queued', started_at = NULL, progress = %s WHERE seq = %s",
                          (dumps(empty_progress()), job.seq))
        self._insert_event(tx, EventType.QUEUED.value, job, requeued_data(job, reason))

    def recover_interrupted(self, *, requeue: bool = True,
                            max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS) -> _Jobs:
        """At start-up: settle every job still ``running`` (see the SQLite store).

        With a database shared by several workers this must not run while any other worker
        runs jobs: until claims carry leases, it settles *every* running job.
        """
        affected: _Strings = []
        with self._write() as tx:
            rows = tx.cursor.execute(  # every row lock first, then the event counter
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' ORDER BY seq FOR NO KEY UPDATE"
            ).fetchall()
            for job in map(job_from_row, rows):
                job.interruptions += 1
                tx.cursor.execute("UPDATE jobs SET interruptions = %s WHERE seq = %s", (job.interruptions, job.seq))
                if requeue and job.interruptions <= max_interruptions:
                    self._put_back(tx, job, reason="interrupted")
                else:
                    error = interrupted_error(job)
                    tx.cursor.execute("UPDATE jobs SET status = 'failed', finished_at = %s, error = %s WHERE seq = %s",
                                      (self._clock(), dumps(error), job.seq))
                    self._insert_event(tx, EventType.FAILED.value, job, {"status": "failed", "error": error})
                affected.append(job.id)
            jobs = [self._select_job(tx.cursor, job_id) for job_id in affected]
        return [job for job in jobs if job is not None]

    def delete(self, job_id: str) -> Job | None:
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or not job.finished:
                return None
            tx.cursor.execute("DELETE FROM jobs WHERE seq = %s", (job.seq,))  # events: CASCADE
        return job

    def purge_finished(self, older_than: float) -> _Jobs:
        with self._write() as tx:
            rows = tx.cursor.execute(
                f"DELETE FROM jobs WHERE status IN {FINISHED_SQL} AND finished_at < %s"
                f" RETURNING {JOB_COLUMNS}", (older_than,)).fetchall()
        return sorted(map(job_from_row, rows), key=lambda job: job.seq)

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in JobStatus}
        for status, count in self._query("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = int(count)
        return counts

    def queued_by_priority(self) -> dict[int, int]:
        rows = self._query("SELECT priority, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY priority")
        return {int(priority): int(count) for priority, count in rows}

    # -- events -------------------------------------------------------------------------------

    def _insert_event(self, tx: _Transaction, type_: str, job: Job | None, data: dict[str, Any], *,
                      job_id: str | None = None, owner: str | None = None) -> Event:
        """Append an event inside ``tx`` (its owner is the job's); takes the id counter's lock,
        so the caller must hold every row lock it needs already."""
        if job is not None:
            job_id, owner = job.id, job.owner
        now = self._clock()
        row = tx.cursor.execute("UPDATE event_ids SET last_id = last_id + 1 RETURNING last_id").fetchone()
        assert row is not None  # the counter row is created with the schema
        event = Event(id=int(row[0]), type=type_, job_id=job_id, owner=owner, data=data, created_at=now)
        tx.cursor.execute("INSERT INTO events (id, type, job_id, owner, data, created_at)"
                          " VALUES (%s, %s, %s, %s, %s, %s)", (event.id, type_, job_id, owner, dumps(data), now))
        tx.events.append(event)
        return event

    def append_event(self, type: str, *, job_id: str | None = None, owner: str | None = None,
                     data: dict[str, Any] | None = None) -> Event:
        """Persist an event; its id is larger than every id handed out before. With ``job_id``
        the owner is the job's (a different ``owner`` is an error; an unknown job raises
        :class:`UnknownJobError`)."""
        data = check_event(type, data)
        with self._write() as tx:
            if job_id is None:
                return self._insert_event(tx, type, None, data, owner=owner)
            # KEY SHARE: the lock the event's foreign key takes anyway, before the counter's.
            row = tx.cursor.execute("SELECT owner FROM jobs WHERE id = %s FOR KEY SHARE", (job_id,)).fetchone()
            if row is None:
                raise UnknownJobError(job_id)
            if owner is not None and owner != row[0]:
                raise ValueError(f"event owner {owner!r} is not the owner of job {job_id}")
            return self._insert_event(tx, type, None, data, job_id=job_id, owner=row[0])

    def events_after(
        self,
        last_id: int,
        *,
        job_id: str | None = None,
        owners: set[str | None] | frozenset[str | None] | None = None,
        limit: int = 1000,
        up_to: int | None = None,
    ) -> _Events:
        where: _Strings = ["id > %s"]
        args: _Anys = [last_id]
        if up_to is not None:
            where.append("id <= %s")
            args.append(up_to)
        if job_id is not None:
            where.append("job_id = %s")
            args.append(job_id)
        if owners is not None:
            clause, owner_args = owner_clause(owners, "%s")
            where.append(clause)
            args.extend(owner_args)
        rows = self._query(f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT %s",
                           [*args, limit])
        return [event_from_row(row) for row in rows]

    def last_event_id(self) -> int:
        """The highest committed event id (0 if none), even if that event was purged."""
        return int(self._query("SELECT last_id FROM event_ids")[0][0])

    def purge_events(self, keep_last: int) -> int:
        check_keep_last(keep_last)
        with self._write() as tx:
            tx.cursor.execute("DELETE FROM events WHERE id NOT IN (SELECT id FROM events ORDER BY id DESC LIMIT %s)",
                              (keep_last,))
            return tx.cursor.rowcount

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        self._closed = True
        self._pool.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> PostgresJobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
