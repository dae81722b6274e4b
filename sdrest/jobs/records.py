"""The job and event records that :class:`~sdrest.jobs.store.JobStore` persists.

These are plain dataclasses on purpose: the store owns all state changes (the row in SQLite is
the single source of truth), so nothing here mutates anything. A :class:`Job` is a snapshot of
a row at the moment it was read; an :class:`Event` is a notification that a row changed (or, for
ephemeral events, that something happened that is not worth persisting, like a preview image).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobStatus(str, enum.Enum):
    """Where a job is in its life: queued -> running -> completed | failed | cancelled.

    A ``str`` enum so that values compare equal to, and serialise as, the plain strings stored
    in the database and sent to HTTP clients.
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the terminal states: the job will never run (again) and may be deleted."""
        return self in _FINISHED

    @property
    def active(self) -> bool:
        """True while the job still waits for or occupies the generation worker."""
        return not self.finished


_FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
FINISHED_STATUSES: frozenset[JobStatus] = _FINISHED


class EventType(str, enum.Enum):
    """The event types sdrest emits. ``Event.type`` is a plain ``str``: these are the known ones."""

    QUEUED = "queued"  # persisted: a job was created or put back into the queue
    STARTED = "started"  # persisted: the supervisor claimed the job
    PROGRESS = "progress"  # ephemeral: step/stage changed (the row is updated, no event row)
    PREVIEW = "preview"  # ephemeral: an intermediate image
    COMPLETED = "completed"  # persisted
    FAILED = "failed"  # persisted
    CANCELLED = "cancelled"  # persisted
    QUEUE = "queue"  # queue-wide notification (e.g. new length), not tied to one job


#: The stages a running job reports in ``progress["stage"]``, in the order they happen.
STAGES: tuple[str, ...] = ("loading", "encoding", "sampling", "decoding", "upscaling", "writing")


def empty_progress() -> dict[str, Any]:
    """The progress of a job that has not started (or was put back into the queue)."""
    return {"step": 0, "steps": 0, "stage": None}


@dataclass
class Job:
    """A snapshot of one job row."""

    id: str
    seq: int
    kind: str
    status: JobStatus
    owner: str | None
    priority: int
    params: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=empty_progress)
    timings: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    attempts: int = 0
    interruptions: int = 0
    worker: str | None = None  # the worker that holds (or last held) the job, by its id
    crashes: int = 0  # worker processes that died running it (see JobStore.requeue)

    @property
    def finished(self) -> bool:
        return self.status.finished

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the status as its string value; containers copied)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "kind": self.kind,
            "status": self.status.value,
            "owner": self.owner,
            "priority": self.priority,
            "params": dict(self.params),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": dict(self.progress),
            "timings": dict(self.timings),
            "error": None if self.error is None else dict(self.error),
            "result": None if self.result is None else dict(self.result),
            "attempts": self.attempts,
            "interruptions": self.interruptions,
            "worker": self.worker,
            "crashes": self.crashes,
        }


@dataclass
class Event:
    """A notification about a job (or the queue).

    ``id`` is the persisted event's row id: strictly increasing and never reused, so it can be
    an SSE ``id:`` and a client's ``Last-Event-ID``. Ephemeral events (previews, progress) have
    ``id`` None: they reach live subscribers only and cannot be replayed.
    """

    id: int | None
    type: str
    job_id: str | None
    owner: str | None
    data: dict[str, Any]
    created_at: float

    @property
    def persisted(self) -> bool:
        return self.id is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "type": self.type,
            "job_id": self.job_id,
            "owner": self.owner,
            "data": dict(self.data),
            "created_at": self.created_at,
        }


@dataclass
class WorkerRecord:
    """A generation worker as the store knows it: who it is and its last heartbeat.

    ``id`` is stable across restarts of one worker (so a restarted worker settles the jobs its
    previous life was running); ``instance`` is new for every process, so two live processes
    can never use one id. ``info`` is what the worker says about itself (host, devices,
    resident models, current job, capabilities).
    """

    id: str
    instance: str
    info: dict[str, Any]
    started_at: float
    heartbeat_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self.instance,
            "info": dict(self.info),
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
        }
