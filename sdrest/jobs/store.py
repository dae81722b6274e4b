"""What a job store is: the interface both backends implement, and the rules they share.

Two backends keep jobs and their event log with the same semantics, proven by one conformance
suite (tests/jobs/test_store_conformance.py):

* :class:`~sdrest.jobs.sqlitestore.SqliteJobStore`, one SQLite file: the embedded default
  (``--store sqlite:///PATH``, or nothing: ``<data-dir>/jobs.sqlite3``);
* :class:`~sdrest.jobs.pgstore.PostgresJobStore`, a PostgreSQL database that several machines
  can share (``--store postgresql://...``; needs the ``postgres`` extra).

Everything that is policy rather than SQL lives here once: argument checks, the error a job
gets when the server stopped under it too often, and which queued job a worker with loaded
models takes. :func:`open_store` builds the backend a ``--store`` URL names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sdrest.jobs.downloads import DownloadStore
from sdrest.jobs.eventlog import EventListener, JobStoreError, dumps
from sdrest.jobs.records import Event, Job, JobStatus, WorkerRecord

#: Server crashes (kill -9, power loss) a running job may live through: it is queued again after
#: each, and failed after one more. Bounded, because a job that takes the whole server down
#: (say the kernel's OOM killer picks the server) would otherwise loop forever.
DEFAULT_MAX_INTERRUPTIONS = 3

SQLITE_SCHEME = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SchemaVersionError(JobStoreError):
    """The database was written by a newer sdrest whose schema this version does not know."""


class WorkerIdInUse(JobStoreError):
    """Another live worker process already uses this worker id."""


# Inside JobStore, `list` names the method (for type checkers), so annotations use these.
_Jobs = list[Job]
_Events = list[Event]
_Strings = list[str]
_Workers = list[WorkerRecord]


class JobStore(DownloadStore, Protocol):
    """Jobs and their persisted events; every method is safe to call from any thread.

    Every change commits before the method returns, and the events it appended reach the
    listeners after that commit (in the calling thread). Event ids only grow, in commit order,
    and are never reused, so they serve as SSE ids.
    """

    # -- jobs ---------------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, owner: str | None = None, priority: int = 0) -> Job:
        """Queue a new job and append its "queued" event, in one transaction."""
        ...

    def get(self, job_id: str) -> Job | None: ...

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
        """One page of jobs (by creation order) and the total matching the filters."""
        ...

    def queued_ids(self) -> _Strings:
        """Queued job ids in run order: priority, then users' turns, then age."""
        ...

    def queue_position(self, job_id: str) -> int | None:
        """How many queued jobs run before this one (0: next), or None if it is not queued."""
        ...

    def queued_count(self, owner: str | None) -> int: ...

    def claim_next(
        self,
        *,
        loaded: Iterable[str] | None = None,
        overtake_limit: int = 0,
        worker: str | None = None,
        lease: float | None = None,
    ) -> Job | None:
        """Atomically take the next queued job (see :func:`preferred_index`) and mark it running,
        held by ``worker`` for ``lease`` seconds (renewed by :meth:`heartbeat`; None: no lease)."""
        ...

    def update_progress(
        self, job_id: str, *, step: int | None = None, steps: int | None = None, stage: str | None = None
    ) -> bool: ...

    def complete(
        self, job_id: str, result: dict[str, Any], timings: dict[str, float], *, worker: str | None = None
    ) -> Job | None: ...

    def fail(
        self,
        job_id: str,
        error: dict[str, Any],
        timings: dict[str, float] | None = None,
        *,
        worker: str | None = None,
    ) -> Job | None: ...

    def cancel(self, job_id: str) -> Job | None:
        """queued/running -> cancelled; returns the job as it was before, or None."""
        ...

    def requeue(self, job_id: str, *, worker: str | None = None, crashed: bool = False) -> bool: ...

    def recover_interrupted(
        self,
        *,
        requeue: bool = True,
        max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS,
        worker: str | None = None,
    ) -> _Jobs: ...

    def expire_leases(self, *, max_interruptions: int = DEFAULT_MAX_INTERRUPTIONS, sparing: str | None = None) -> _Jobs:
        """Requeue (or fail as "worker_lost") the running jobs whose lease ran out."""
        ...

    # -- workers ------------------------------------------------------------------------------

    def register_worker(
        self, worker: str, instance: str, info: dict[str, Any], *, lease: float, replace: str | None = None
    ) -> None: ...

    def heartbeat(
        self, worker: str, instance: str, info: dict[str, Any], *, lease: float
    ) -> dict[str, str | None] | None: ...

    def unregister_worker(self, worker: str, instance: str) -> None: ...

    def workers(self) -> _Workers: ...

    def request_stop(self, job_id: str, mode: str) -> bool: ...

    def delete(self, job_id: str) -> Job | None: ...

    def purge_finished(self, older_than: float) -> _Jobs: ...

    def counts(self) -> dict[str, int]: ...

    def queued_by_priority(self) -> dict[int, int]: ...

    def schema_version(self) -> int: ...

    # -- events -------------------------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None: ...

    def remove_listener(self, listener: EventListener) -> None: ...

    def add_remote_listener(self, listener: EventListener) -> None:
        """Events of other processes sharing the store (see :class:`~sdrest.jobs.eventlog.Listeners`)."""
        ...

    def remove_remote_listener(self, listener: EventListener) -> None: ...

    def broadcast(self, event: Event) -> None:
        """Send an ephemeral event to the other processes' remote listeners (best effort)."""
        ...

    def append_event(
        self, type: str, *, job_id: str | None = None, owner: str | None = None, data: dict[str, Any] | None = None
    ) -> Event: ...

    def events_after(
        self,
        last_id: int,
        *,
        job_id: str | None = None,
        owners: set[str | None] | frozenset[str | None] | None = None,
        limit: int = 1000,
        up_to: int | None = None,
    ) -> _Events: ...

    def last_event_id(self) -> int:
        """The highest committed event id ever handed out (0 if none), even if purged."""
        ...

    def purge_events(self, keep_last: int) -> int: ...

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


# -- rules both backends share ------------------------------------------------------------------


def check_new_job(kind: str, params: dict[str, Any], priority: int) -> str:
    """Validate :meth:`JobStore.create`'s arguments; returns the params as JSON text."""
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind must be a non-empty string")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, not {type(params).__name__}")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError("priority must be an int")
    return dumps(params)  # before any transaction: a bad value fails cleanly


def check_page(limit: int | None, offset: int) -> None:
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("limit and offset must not be negative")


def status_values(statuses: Iterable[JobStatus | str]) -> list[str]:
    return sorted({JobStatus(status).value for status in statuses})


def check_progress(step: int | None, steps: int | None, stage: str | None) -> dict[str, Any]:
    """The progress fields to set (only those given), validated."""
    fields: dict[str, Any] = {}
    for key, value in (("step", step), ("steps", steps)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a non-negative int, not {value!r}")
            fields[key] = value
    if stage is not None:
        if not isinstance(stage, str):
            raise TypeError("stage must be a string")
        fields["stage"] = stage
    return fields


def check_error(error: dict[str, Any]) -> None:
    """Errors must carry a machine-readable code and a human message: clients rely on both."""
    if not isinstance(error, dict):
        raise TypeError(f"error must be a dict, not {type(error).__name__}")
    for key in ("code", "message"):
        if not isinstance(error.get(key), str):
            raise ValueError(f"error needs a string {key!r}: {error!r}")


def check_outcome(result: dict[str, Any], timings: dict[str, float]) -> None:
    if not isinstance(result, dict) or not isinstance(timings, dict):
        raise TypeError("result and timings must be dicts")


#: Why a running job was cut off, by the code of its error once that happened too often.
_CUT_OFF = {
    "interrupted": "the server stopped while this job was running",  # start-up recovery
    "worker_lost": "the worker running this job stopped answering",  # its lease ran out
}


def cut_off_error(job: Job, code: str) -> dict[str, Any]:
    """The error of a job cut off (``code``: "interrupted" or "worker_lost") once too often."""
    times = f"{job.interruptions} time{'s' if job.interruptions > 1 else ''}"
    error: dict[str, Any] = {"code": code, "message": f"{_CUT_OFF[code]} ({times})"}
    if code == "worker_lost":
        error["worker"] = job.worker
    return {**error, "attempts": job.attempts, "interruptions": job.interruptions}


def check_lease(lease: float) -> None:
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
        raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")


def requeued_data(job: Job, reason: str) -> dict[str, Any]:
    """The "queued" event of a job put back into the queue."""
    return {
        "status": "queued",
        "kind": job.kind,
        "priority": job.priority,
        "requeued": True,
        "reason": reason,
        "attempts": job.attempts,
    }


def preferred_index(candidates: Sequence[tuple[str | None, int]], loaded: set[str], limit: int) -> int:
    """Which of the queued jobs of the head's priority, in run order, a worker takes.

    ``candidates``: each job's model file (None: any, e.g. an upscale) and how often it has been
    overtaken. The first job that needs no other model than those ``loaded`` runs first, so a
    loaded model is used before it is swapped out; every job before it has then been overtaken
    once more (the caller counts that). A job overtaken ``limit`` times is overtaken no more, so
    no job waits more than ``limit`` extra jobs for its model's turn.
    """
    for index, (model, bypassed) in enumerate(candidates):
        if model is None or model in loaded:
            return index
        if bypassed >= limit:
            break  # this job may not be overtaken again: strict order
    return 0


# -- opening a store by URL ---------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (everything after the third slash, as written: a
    fourth slash makes it absolute), or None for another scheme."""
    if not url.startswith(SQLITE_SCHEME):
        return None
    return Path(url[len(SQLITE_SCHEME) :])


def is_postgres_url(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """``url`` without its password (after the user name, or a ``password=`` parameter), for
    messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparseable (a bad IPv6 host, port): show only the scheme
        return f"{url.split(':', 1)[0]}://..."
    netloc = parts.netloc
    if password is not None:
        credentials, host = netloc.rsplit("@", 1)
        netloc = f"{credentials.split(':', 1)[0]}:***@{host}"
    query = [
        (key, "***" if key == "password" else value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    if netloc == parts.netloc and all(key != "password" for key, _ in query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


def open_store(
    url: str,
    *,
    clock: Callable[[], float] | None = None,
    pool_size: int | None = None,
    wait_seconds: float | None = None,
) -> JobStore:
    """The job store a ``--store`` URL names: ``sqlite:///PATH`` or ``postgresql://...``.

    ``pool_size`` (PostgreSQL): the most connections it opens (``--store-pool-size``).
    ``wait_seconds``: how long a call waits for the database (a free pooled connection, or
    SQLite's write lock) before it raises :class:`~sdrest.jobs.JobStoreUnavailable`
    (``--store-wait-seconds``). None: the backend's default.
    """
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    path = sqlite_path(url)
    if path is not None:
        from sdrest.jobs.sqlitestore import SqliteJobStore

        if wait_seconds is not None:
            kwargs["busy_timeout"] = wait_seconds
        return SqliteJobStore(path, **kwargs)
    if pool_size is not None:
        kwargs["pool_size"] = pool_size
    if wait_seconds is not None:
        kwargs["wait_timeout"] = wait_seconds
    if is_postgres_url(url):
        try:
            from sdrest.jobs.pgstore import PostgresJobStore
        except ImportError as exc:
            raise JobStoreError(
                f"a postgresql:// store needs the postgres extra (pip install 'sdrest[postgres]'): {exc}"
            ) from exc
        return PostgresJobStore(url, **kwargs)
    raise JobStoreError("the job store URL must start with sqlite:/// or postgresql://")
