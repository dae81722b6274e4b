"""The job queue's persistence and notifications.

:class:`JobStore` keeps every job (the single source of truth) and the persisted event log:
:class:`SqliteJobStore` in one SQLite file that survives ``kill -9`` (the embedded default), or
``PostgresJobStore`` (:mod:`sdrest.jobs.pgstore`) in a database several machines share;
:func:`open_store` opens the one a ``--store`` URL names. :class:`EventBus` wakes Server-Sent
Events subscribers when jobs change and carries ephemeral events (progress, previews) to them.

>>> store = open_store("sqlite:///var/jobs.db")
>>> bus = EventBus(store)
>>> job = store.create("txt2img", {"prompt": "a lighthouse"}, owner="alice")
>>> with bus.subscribe(last_event_id=0, owners={"alice"}) as subscription:
...     [event.type for event in subscription.next_batch(timeout=1.0)]
['queued']
"""

from sdrest.jobs.bus import EventBus, Subscription
from sdrest.jobs.eventlog import JobStoreError, JobStoreUnavailable, UnknownJobError
from sdrest.jobs.records import FINISHED_STATUSES, STAGES, Event, EventType, Job, JobStatus, WorkerRecord
from sdrest.jobs.sqlitestore import SCHEMA_VERSION, SqliteJobStore
from sdrest.jobs.store import JobStore, SchemaVersionError, WorkerIdInUse, open_store

__all__ = [
    "FINISHED_STATUSES",
    "SCHEMA_VERSION",
    "STAGES",
    "Event",
    "EventBus",
    "EventType",
    "Job",
    "JobStatus",
    "JobStore",
    "JobStoreError",
    "JobStoreUnavailable",
    "SchemaVersionError",
    "SqliteJobStore",
    "Subscription",
    "UnknownJobError",
    "WorkerIdInUse",
    "WorkerRecord",
    "open_store",
]
