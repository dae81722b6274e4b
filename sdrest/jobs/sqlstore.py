"""The SQL both job store backends run: the jobs table's queries and state changes.

SQLite and PostgreSQL take the same statements (``?`` marks a parameter; the PostgreSQL backend
passes them on as ``%s``). What differs stays in the backends: how a transaction and a snapshot
are opened, where a new job's seq and an event's id come from, how a job is claimed, how a
progress update skips the disk flush, and the row-lock clauses below (empty for SQLite, whose
write transactions are serialised as a whole).
"""

from __future__ import annotations

import abc
import contextlib
import json
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from sdrest.jobs.downloads import DownloadSql
from sdrest.jobs.eventlog import Cursor, EventLog, Transaction, dumps, loads, owner_clause
from sdrest.jobs.records import EventType, Job, JobStatus, WorkerRecord, empty_progress
from sdrest.jobs.store import (
    DEFAULT_MAX_INTERRUPTIONS,
    WorkerIdInUse,
    check_error,
    check_lease,
    check_new_job,
    check_outcome,
    check_page,
    cut_off_error,
    requeued_data,
    status_values,
)

#: The jobs table's columns, in the order :func:`job_from_row` reads them.
JOB_COLUMNS = (
    "id, seq, kind, status, owner, priority, params, created_at, started_at, finished_at, "
    "progress, timings, error, result, attempts, interruptions, worker, crashes"
)
FINISHED_SQL = "('completed', 'failed', 'cancelled')"

# The run order: higher priority first; within a priority, users take turns: each user's first
# waiting job, then each one's second, ...; within a turn, the user served longest ago (or never)
# first, then FIFO. So one user's 500 queued jobs delay another user's job by at most one of theirs.
RUN_ORDER = "priority DESC, turn ASC, last_served ASC, seq ASC"

# Inside SqlJobStore, `list` names the method (for type checkers), so annotations use these.
_Jobs = list[Job]
_Strings = list[str]
_Anys = list[Any]
_Workers = list[WorkerRecord]


def queue_cte(same_owner: str) -> str:
    """``WITH ... queue`` of the queued jobs with the columns :data:`RUN_ORDER` sorts by;
    ``same_owner``: the dialect's NULL-safe equality (SQLite ``IS``, PostgreSQL ``IS NOT
    DISTINCT FROM``)."""
    return (
        "WITH served AS (SELECT owner, MAX(started_at) AS last FROM jobs"
        " WHERE started_at IS NOT NULL GROUP BY owner),"
        " queue AS (SELECT jobs.id, jobs.seq, jobs.priority,"
        " ROW_NUMBER() OVER (PARTITION BY jobs.priority, jobs.owner ORDER BY jobs.seq) AS turn,"
        " COALESCE(served.last, 0) AS last_served"
        f" FROM jobs LEFT JOIN served ON served.owner {same_owner} jobs.owner WHERE jobs.status = 'queued')"
    )


def job_from_row(row: tuple) -> Job:
    (
        job_id,
        seq,
        kind,
        status,
        owner,
        priority,
        params,
        created_at,
        started_at,
        finished_at,
        progress,
        timings,
        error,
        result,
        attempts,
        interruptions,
        worker,
        crashes,
    ) = row
    return Job(
        id=job_id,
        seq=seq,
        kind=kind,
        status=JobStatus(status),
        owner=owner,
        priority=priority,
        params=loads(params),
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        progress=loads(progress),
        timings=loads(timings),
        error=loads(error),
        result=loads(result),
        attempts=attempts,
        interruptions=interruptions,
        worker=worker,
        crashes=crashes,
    )


_Store = TypeVar("_Store", bound="SqlJobStore")


class SqlJobStore(DownloadSql, EventLog):
    """The job store's shared SQL; a backend adds its plumbing (see the module docstring)."""

    #: The queue in run order (the dialect's NULL-safe equality inside).
    _QUEUE_CTE = queue_cte("IS")
    #: Appended to the SELECT of a job about to change: its row lock (PostgreSQL).
    _LOCK_ROW = ""
    #: LIMIT's value for "no limit".
    _NO_LIMIT: int | None = -1

    @abc.abstractmethod
    def _read(self) -> contextlib.AbstractContextManager[Cursor]:
        """A snapshot for several SELECTs (a page and its total) that must agree."""

    def _insert_job(self, tx: Transaction, job: Job, params_json: str) -> int:
        """INSERT the new job's row; returns its seq (RETURNING: PostgreSQL, and SQLite since 3.35)."""
        row = tx.cursor.execute(
            "INSERT INTO jobs (id, kind, status, owner, priority, params, created_at, progress, timings, attempts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 0) RETURNING seq",
            (
                job.id,
                job.kind,
                job.status.value,
                job.owner,
                job.priority,
                params_json,
                job.created_at,
                dumps(job.progress),
            ),
        ).fetchone()
        return int(row[0])

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend's connections (idempotent)."""

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def schema_version(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    def _select_job(self, cursor: Cursor, job_id: str, *, lock: bool = False) -> Job | None:
        row = cursor.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?{self._LOCK_ROW if lock else ''}", (job_id,)
        ).fetchone()
        return None if row is None else job_from_row(row)

    # -- jobs -------------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, owner: str | None = None, priority: int = 0) -> Job:
        """Queue a new job and append its "queued" event, in one transaction."""
        params_json = check_new_job(kind, params, priority)
        job = Job(
            id=str(uuid.uuid4()),
            seq=0,
            kind=kind,
            status=JobStatus.QUEUED,
            owner=owner,
            priority=priority,
            params=json.loads(params_json),
            created_at=self._clock(),
        )
        with self._write() as tx:
            job.seq = self._insert_job(tx, job, params_json)
            self._insert_event(
                tx, EventType.QUEUED.value, job, {"status": "queued", "kind": kind, "priority": priority}
            )
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
            total = int(cur.execute(f"SELECT COUNT(*) FROM jobs {where_sql}", args).fetchone()[0])
            rows = cur.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs {where_sql} ORDER BY seq {order} LIMIT ? OFFSET ?",
                [*args, self._NO_LIMIT if limit is None else limit, offset],
            ).fetchall()
        return [job_from_row(row) for row in rows], total

    def queued_ids(self) -> _Strings:
        """Queued job ids in the order they will run (see :data:`RUN_ORDER`)."""
        rows = self._query(f"{self._QUEUE_CTE} SELECT id FROM queue ORDER BY {RUN_ORDER}")
        return [row[0] for row in rows]

    def queue_position(self, job_id: str) -> int | None:
        """How many queued jobs run before this one (0: next), or None if it is not queued."""
        rows = self._query(
            f"{self._QUEUE_CTE}, ordered AS (SELECT id, ROW_NUMBER() OVER (ORDER BY {RUN_ORDER}) - 1 AS position"
            " FROM queue) SELECT position FROM ordered WHERE id = ?",
            (job_id,),
        )
        return int(rows[0][0]) if rows else None

    def queued_count(self, owner: str | None) -> int:
        """How many jobs ``owner`` has waiting (None: the jobs without an owner)."""
        clause, args = owner_clause({owner})
        return int(self._query(f"SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND {clause}", args)[0][0])

    def _claim(self, tx: Transaction, row: tuple, worker: str | None, lease: float | None) -> Job:
        """Mark the queued job of ``row`` (locked by the caller) running, with its event; held by
        ``worker`` until ``lease`` seconds from now (None: no lease, it never expires)."""
        job = job_from_row(row)
        job.status = JobStatus.RUNNING
        job.started_at = self._clock()
        job.attempts += 1
        job.progress = empty_progress()
        job.worker = worker
        if lease is not None:
            check_lease(lease)
        lease_until = None if lease is None else job.started_at + lease
        tx.cursor.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, attempts = ?, progress = ?, worker = ?,"
            " lease_until = ?, stop = NULL WHERE seq = ?",
            (job.started_at, job.attempts, dumps(job.progress), worker, lease_until, job.seq),
        )
        self._insert_event(
            tx, EventType.STARTED.value, job, {"status": "running", "kind": job.kind, "attempt": job.attempts}
        )
        return job

    def _finish(
        self,
        job_id: str,
        status: JobStatus,
        assignments: dict[str, Any],
        event_type: EventType,
        event_data: dict[str, Any],
        worker: str | None = None,
    ) -> Job | None:
        """running -> ``status`` with the given column values, plus the event; else None (also
        when ``worker`` is given and does not hold the job: it lost it, another runs it now)."""
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or job.status is not JobStatus.RUNNING or not _held_by(job, worker):
                return None
            columns = {"status": status.value, "finished_at": self._clock(), "lease_until": None, **assignments}
            tx.cursor.execute(
                f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in columns)} WHERE seq = ?",
                (*columns.values(), job.seq),
            )
            job = self._select_job(tx.cursor, job_id)
            assert job is not None  # locked above
            self._insert_event(tx, event_type.value, job, {"status": status.value, **event_data})
        return job

    def complete(
        self, job_id: str, result: dict[str, Any], timings: dict[str, float], *, worker: str | None = None
    ) -> Job | None:
        """running -> completed; None if the job was not running (e.g. cancelled meanwhile) or,
        given ``worker``, that worker no longer holds it."""
        check_outcome(result, timings)
        return self._finish(
            job_id,
            JobStatus.COMPLETED,
            {"result": dumps(result), "timings": dumps(timings)},
            EventType.COMPLETED,
            {"result": result, "timings": timings},
            worker,
        )

    def fail(
        self,
        job_id: str,
        error: dict[str, Any],
        timings: dict[str, float] | None = None,
        *,
        worker: str | None = None,
    ) -> Job | None:
        """running -> failed; None if the job was not running (or, given ``worker``, that worker
        no longer holds it). ``error`` needs code and message."""
        check_error(error)
        assignments = {"error": dumps(error)}
        data: dict[str, Any] = {"error": error}
        if timings is not None:
            assignments["timings"] = dumps(timings)
            data["timings"] = timings
        return self._finish(job_id, JobStatus.FAILED, assignments, EventType.FAILED, data, worker)

    def cancel(self, job_id: str) -> Job | None:
        """queued/running -> cancelled. Returns the job as it was *before* (so the caller knows
        whether a worker must be stopped), or None if it is unknown or already finished."""
        with self._write() as tx:
            before = self._select_job(tx.cursor, job_id, lock=True)
            if before is None or before.finished:
                return None
            tx.cursor.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?, lease_until = NULL WHERE seq = ?",
                (self._clock(), before.seq),
            )
            self._insert_event(
                tx, EventType.CANCELLED.value, before, {"status": "cancelled", "previous_status": before.status.value}
            )
        return before

    def requeue(self, job_id: str, *, worker: str | None = None, crashed: bool = False) -> bool:
        """running -> queued, keeping its place (seq) and priority; False if it was not running
        (or, given ``worker``, that worker no longer holds it).

        For a supervisor that lost its worker for reasons that are not the job's fault, or,
        ``crashed``, whose worker process died running it (counted in ``crashes``: the caller
        bounds how often a job may take a worker down).
        """
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or job.status is not JobStatus.RUNNING or not _held_by(job, worker):
                return False
            if crashed:
                job.crashes += 1
                tx.cursor.execute("UPDATE jobs SET crashes = ? WHERE seq = ?", (job.crashes, job.seq))
            self._put_back(tx, job, reason="worker_crashed" if crashed else "requeued")
        return True

    def _put_back(self, tx: Transaction, job: Job, *, reason: str) -> None:
        tx.cursor.execute(
            "UPDATE jobs SET status = 'queued', started_at = NULL, progress = ?, worker = NULL, lease_until = NULL,"
            " stop = NULL WHERE seq = ?",
            (dumps(empty_progress()), job.seq),
        )
        self._insert_event(tx, EventType.QUEUED.value, job, requeued_data(job, reason))

    def recover_interrupted(
        self,
        *,
        requeue: bool = True,
        max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS,
        worker: str | None = None,
    ) -> _Jobs:
        """At start-up: jobs still ``running`` were cut off by a crash; settle each one.

        Without ``worker``, every running job (for a store no other process uses). With
        ``worker``, the jobs that worker held (and any no worker held: claimed before claims
        named their worker): a worker that starts again settles what its previous life ran,
        and leaves other workers' jobs to their leases.

        A server crash is not the job's fault, so with ``requeue`` (the default) the job goes
        back to its place in the queue, as long as it has been interrupted at most
        ``max_interruptions`` times; after that, or without ``requeue``, it fails with code
        "interrupted". (A job whose *worker* crashed failed there and then: it may be poison.)
        Returns the affected jobs, as they are now.
        """
        where, args = ("status = 'running'", [])
        if worker is not None:
            where, args = "status = 'running' AND (worker = ? OR worker IS NULL)", [worker]
        return self._settle_cut_off(where, args, requeue, max_interruptions, "interrupted")

    def expire_leases(self, *, max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS, sparing: str | None = None) -> _Jobs:
        """Settle the running jobs whose lease ran out: their worker stopped renewing it (it was
        killed, lost power or its network). Each goes back to its place in the queue for another
        worker, or fails with code "worker_lost" once it has been cut off more than
        ``max_interruptions`` times. ``sparing``: the calling worker, whose own jobs are not lost
        (it is alive: a late heartbeat of a stalled machine must not take its jobs from it).
        Safe to call from every node at once; returns the jobs."""
        where = "status = 'running' AND lease_until < ?"
        args: _Anys = [self._clock()]
        if sparing is not None:
            where, args = f"{where} AND worker <> ?", [*args, sparing]
        return self._settle_cut_off(where, args, True, max_interruptions, "worker_lost")

    def _settle_cut_off(
        self,
        where: str,
        args: _Anys,
        requeue: bool,
        max_interruptions: int,
        reason: str,
    ) -> _Jobs:
        """Count one more interruption of each running job ``where`` selects, and put it back in
        the queue (``reason``), or fail it with the error of that code past the bound."""
        affected: _Strings = []
        with self._write() as tx:
            rows = tx.cursor.execute(  # every row lock before the first event
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY seq{self._LOCK_ROW}", args
            ).fetchall()
            for job in map(job_from_row, rows):
                job.interruptions += 1
                tx.cursor.execute("UPDATE jobs SET interruptions = ? WHERE seq = ?", (job.interruptions, job.seq))
                if requeue and job.interruptions <= max_interruptions:
                    self._put_back(tx, job, reason=reason)
                else:
                    error = cut_off_error(job, reason)
                    tx.cursor.execute(
                        "UPDATE jobs SET status = 'failed', finished_at = ?, error = ?, lease_until = NULL"
                        " WHERE seq = ?",
                        (self._clock(), dumps(error), job.seq),
                    )
                    self._insert_event(tx, EventType.FAILED.value, job, {"status": "failed", "error": error})
                affected.append(job.id)
            jobs = [self._select_job(tx.cursor, job_id) for job_id in affected]
        return [job for job in jobs if job is not None]

    # -- workers ----------------------------------------------------------------------------

    def register_worker(
        self, worker: str, instance: str, info: dict[str, Any], *, lease: float, replace: str | None = None
    ) -> None:
        """Announce worker ``worker``, this process being ``instance``.

        Raises :class:`~sdrest.jobs.store.WorkerIdInUse` if another instance holds the id and
        its heartbeat is younger than ``lease`` seconds: two live processes must never share an
        id, since each would take the other's jobs for its own. ``replace``: that instance is
        known to be dead (its process is gone), so it is replaced whatever its heartbeat.
        """
        check_lease(lease)
        now = self._clock()
        info_json = dumps(info)
        with self._write() as tx:
            # Insert if new (a concurrent registration of the same id waits for ours, and then
            # finds it below), else lock the row and look at its owner.
            inserted = tx.cursor.execute(
                "INSERT INTO workers (id, instance, info, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                (worker, instance, info_json, now, now),
            ).fetchone()
            if inserted is not None:
                return
            row = tx.cursor.execute(
                f"SELECT instance, heartbeat_at, info FROM workers WHERE id = ?{self._LOCK_ROW}", (worker,)
            ).fetchone()
            if row[0] not in (instance, replace) and row[1] + lease > now:
                host = (loads(row[2]) or {}).get("host")
                raise WorkerIdInUse(
                    f"worker id {worker!r} is in use by a live worker{f' on {host}' if host else ''} "
                    f"(last heartbeat {now - row[1]:.0f} s ago); give this one another --worker-id"
                )
            tx.cursor.execute(
                "UPDATE workers SET instance = ?, info = ?, started_at = ?, heartbeat_at = ? WHERE id = ?",
                (instance, info_json, now, now, worker),
            )

    def heartbeat(
        self, worker: str, instance: str, info: dict[str, Any], *, lease: float
    ) -> dict[str, str | None] | None:
        """Renew ``worker``'s registration and the leases of the jobs it runs, for ``lease``
        seconds more. Returns those jobs that are still running, each with the stop another
        node asked of it (None, or "new_latents"); a job missing from it was cancelled (or,
        its lease lost, settled) meanwhile. None if this instance no longer holds the id."""
        check_lease(lease)
        now = self._clock()
        with self._write() as tx:
            updated = tx.cursor.execute(
                "UPDATE workers SET info = ?, heartbeat_at = ? WHERE id = ? AND instance = ?",
                (dumps(info), now, worker, instance),
            ).rowcount
            if not updated:
                return None
            rows = tx.cursor.execute(
                f"SELECT seq, id, stop FROM jobs WHERE worker = ? AND status = 'running' ORDER BY seq{self._LOCK_ROW}",
                (worker,),
            ).fetchall()
            if rows:
                tx.cursor.execute(
                    f"UPDATE jobs SET lease_until = ? WHERE seq IN ({', '.join('?' * len(rows))})",
                    [now + lease, *(row[0] for row in rows)],
                )
        return {row[1]: row[2] for row in rows}

    def unregister_worker(self, worker: str, instance: str) -> None:
        """A worker that stops on purpose leaves the list (only its own registration)."""
        with self._write() as tx:
            tx.cursor.execute("DELETE FROM workers WHERE id = ? AND instance = ?", (worker, instance))

    def workers(self) -> _Workers:
        """Every registered worker, by id (stopped ones keep their row until they stop on purpose)."""
        rows = self._query("SELECT id, instance, info, started_at, heartbeat_at FROM workers ORDER BY id")
        return [WorkerRecord(row[0], row[1], loads(row[2]) or {}, row[3], row[4]) for row in rows]

    def request_stop(self, job_id: str, mode: str) -> bool:
        """Ask the worker that runs ``job_id`` to stop it (``mode`` as for a cancel: the worker
        sees it at its next heartbeat); False if the job is not running."""
        with self._write() as tx:
            return (
                tx.cursor.execute(
                    "UPDATE jobs SET stop = ? WHERE id = ? AND status = 'running'", (mode, job_id)
                ).rowcount
                > 0
            )

    def delete(self, job_id: str) -> Job | None:
        """Remove a finished job and its events; returns it (so its files can go too) or None
        if it is unknown or not finished (cancel it first)."""
        with self._write() as tx:
            job = self._select_job(tx.cursor, job_id, lock=True)
            if job is None or not job.finished:
                return None
            tx.cursor.execute("DELETE FROM jobs WHERE seq = ?", (job.seq,))  # events: CASCADE
        return job

    def purge_finished(self, older_than: float) -> _Jobs:
        """Remove finished jobs whose ``finished_at`` is before ``older_than`` (unix time)."""
        with self._write() as tx:
            rows = tx.cursor.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN {FINISHED_SQL} AND finished_at < ?"
                f" ORDER BY seq{self._LOCK_ROW}",
                (older_than,),
            ).fetchall()
            jobs = [job_from_row(row) for row in rows]
            # Exactly the rows read (a job finishing meanwhile is left for next time), in chunks
            # that stay below every SQLite's limit on parameters.
            for start in range(0, len(jobs), 500):
                chunk = [job.seq for job in jobs[start : start + 500]]
                tx.cursor.execute(f"DELETE FROM jobs WHERE seq IN ({', '.join('?' * len(chunk))})", chunk)
        return jobs

    def counts(self) -> dict[str, int]:
        """Number of jobs per status (every status present, zero included)."""
        counts = {status.value: 0 for status in JobStatus}
        for status, count in self._query("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = int(count)
        return counts

    def queued_by_priority(self) -> dict[int, int]:
        """Number of queued jobs per priority (only priorities that have some)."""
        rows = self._query("SELECT priority, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY priority")
        return {int(priority): int(count) for priority, count in rows}


def _held_by(job: Job, worker: str | None) -> bool:
    """``worker`` holds the (running) ``job``; None: any holder will do."""
    return worker is None or job.worker == worker
