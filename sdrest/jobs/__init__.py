"""The job queue's persistence and notifications.

:class:`JobStore` keeps every job (the single source of truth) and the persisted event log in
one SQLite file that survives ``kill -9``; :class:`EventBus` wakes Server-Sent Events
subscribers when jobs change and carries ephemeral events (progress, previews) to them.

>>> store = JobStore("var/jobs.db")
>>> bus = EventBus(store)
>>> job = store.create("txt2img", {"prompt": "a lighthouse"}, owner="alice")
>>> with bus.subscribe(last_event_id=0, owners={"alice"}) as subscription:
...     [event.type for event in subscription.next_batch(timeout=1.0)]
['queued']
"""

from sdrest.jobs.bus import EventBus, Subscription
from sdrest.jobs.eventlog import JobStoreError, UnknownJobError
from sdrest.jobs.records import FINISHED_STATUSES, STAGES, Event, EventType, Job, JobStatus
from sdrest.jobs.store import SCHEMA_VERSION, JobStore, SchemaVersionError

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
    "SchemaVersionError",
    "Subscription",
    "UnknownJobError",
]
