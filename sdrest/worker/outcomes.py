"""What happens to a running job, written to the job store, the event bus and the counters.

A job that does not complete keeps no files: a worker killed between writing its images and
reporting them would otherwise leave files that no job record names. A completed job's files go
to the image store (:meth:`~sdrest.images.ImageStore.publish`: nothing to do for a folder, the
rows of the database's ``job_files`` otherwise) before its state is stored, so a client that sees
it completed finds them on every node.

Every change names this worker (``worker``): a worker whose lease ran out while it was slow or
cut off has lost the job to another, and nothing it reports afterwards may end that other
worker's attempt or remove its files.

*While the job store is unavailable* (a database outage): progress is not recorded (it is still
published on this node), and the end of a job (completed, failed, cancelled, back in the queue)
waits and is tried again until the store takes it, so a job that finished meanwhile is neither
lost nor run a second time. Its lease may run out during the outage; once the database is back,
this worker's heartbeat renews it before the other workers settle lapsed leases (they first give
every worker a lease's time: :mod:`~sdrest.worker.membership`). Only a stop of this worker gives
up the wait: the lease then runs out and the job runs again elsewhere.
"""

from __future__ import annotations

import base64
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sdrest.errors import StoreUnavailable
from sdrest.images import ImageStore
from sdrest.jobs import EventBus, Job, JobStatus, JobStore

log = logging.getLogger("sdrest.supervisor")

T = TypeVar("T")

#: Seconds between two tries of storing a job's end while the store is unavailable (doubling).
RETRY_PAUSE = (0.5, 5.0)


class JobOutcomes:
    """Progress, previews and the end of each job the worker runs."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        images: ImageStore,
        counters: collections.Counter[str],
        worker: str | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        """``stopping``: set when the worker stops (a wait for an unavailable store gives up)."""
        self.store = store
        self.worker = worker
        self.bus = bus
        self.images = images
        self.counters = counters
        self.stopping = stopping or threading.Event()
        self._progress_paused_until = 0.0  # monotonic: no progress is stored before then

    def apply(self, job: Job, message: dict[str, Any]) -> bool:
        """Apply one worker message about ``job``; True when the job is over."""
        if message.get("type") == "done":  # the job's end: it must reach the store
            self._until_stored(job, "completion", lambda: self._apply(job, message))
            return True
        return self._apply(job, message)

    def _apply(self, job: Job, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "progress":
            progress: dict[str, Any] = {k: message[k] for k in ("step", "steps", "stage") if k in message}
            if self._record_progress(job, progress):
                self.bus.emit("progress", job_id=job.id, owner=job.owner, data=progress, persist=False)
            return False
        if kind == "preview":
            image = "data:image/png;base64," + base64.b64encode(message["png"]).decode()
            data = {"step": message["step"], "image": image}
            self.bus.emit("preview", job_id=job.id, owner=job.owner, data=data, persist=False)
            return False
        if kind == "done":
            result = dict(message["result"])  # a copy: a retry after an outage reads the message again
            timings = result.pop("timings", {})
            if not self._publish(job):
                return True
            if self.store.complete(job.id, result, timings, worker=self.worker) is not None:
                self.counters["completed"] += 1
                self.counters["images"] += len(result.get("images", []))
            else:  # cancelled while its images were being written: nothing names them now
                self.discard_outputs(job)
            return True
        if kind == "error":
            if message["error"].get("code") == "cancelled":
                self.cancelled(job)  # the store's cancel is a no-op unless a "new_latents" stop found no image done
                return True
            self.failed(job, message["error"])
            return True
        log.warning("unknown worker message %r", kind)
        return False

    def _publish(self, job: Job) -> bool:
        """Store the job's files where every node reads them, if this worker still holds the
        job (one that lost it must not replace the files of the worker that has it now); False
        when they could not be stored (the job failed)."""
        current = self.store.get(job.id)
        if current is None or current.status is not JobStatus.RUNNING or not self._holds(current):
            self.images.drop_staged(job.id)  # what it wrote here; the stored files are not its own
            return True  # complete() refuses it
        try:
            self.images.publish(job.id)
        except StoreUnavailable:
            raise  # an outage: the outcome is kept and stored once the database is back
        except Exception as exc:  # a database hiccup must not leave it running
            log.exception("job %s: its files could not be stored", job.id)
            self.failed(job, {"code": "images_not_stored", "message": f"the job's files could not be stored: {exc}"})
            return False
        return True

    def _record_progress(self, job: Job, progress: dict[str, Any]) -> bool:
        """Store the job's progress; False if the job is not running. During an outage it is
        not stored, and not tried again for a while (each try waits for a connection)."""
        if time.monotonic() < self._progress_paused_until:
            return True
        try:
            return self.store.update_progress(job.id, **progress)
        except StoreUnavailable:
            self._progress_paused_until = time.monotonic() + RETRY_PAUSE[1]
            return True  # this node's watchers still see it

    def cancelled(self, job: Job) -> None:
        """The job stopped on a cancel (a "new_latents" stop is still running in the store)."""
        self._until_stored(job, "cancel", lambda: self._cancelled(job))

    def _cancelled(self, job: Job) -> None:
        current = self.store.get(job.id)
        self._discard(job.id, current)
        if self._holds(current):
            self.store.cancel(job.id)
        self.counters["cancelled"] += 1

    def failed(self, job: Job, error: dict[str, Any], timings: dict[str, float] | None = None) -> None:
        self._until_stored(job, "failure", lambda: self._failed(job, error, timings))

    def _failed(self, job: Job, error: dict[str, Any], timings: dict[str, float] | None) -> None:
        # Files first: a client that sees the job failed must not find its folder still there.
        self.discard_outputs(job)
        if self.store.fail(job.id, error, timings, worker=self.worker) is not None:
            self.counters["failed"] += 1

    def requeued(self, job: Job, *, crashed: bool = False) -> None:
        """Back to its place in the queue, without the files of the attempt that was cut off
        (``crashed``: its worker process died running it)."""
        self._until_stored(job, "return to the queue", lambda: self._requeued(job, crashed))

    def _requeued(self, job: Job, crashed: bool) -> None:
        self.discard_outputs(job)  # before it is queued: its next attempt writes the same folder
        self.store.requeue(job.id, worker=self.worker, crashed=crashed)

    def _until_stored(self, job: Job, what: str, change: Callable[[], T]) -> T | None:
        """``change()``, the end of ``job`` (``what``), tried again while the store is
        unavailable (see the module docstring); None if the worker stopped before it could."""
        pause = RETRY_PAUSE[0]
        waited = False
        while True:
            try:
                result = change()
            except StoreUnavailable as exc:
                if not waited:
                    log.warning("job %s: its %s waits for %s to be available again", job.id, what, exc.what)
                    waited = True
                if self.stopping.wait(pause):
                    log.warning(
                        "job %s: its %s was not stored before this worker stopped (it runs again when its lease ends)",
                        job.id,
                        what,
                    )
                    return None
                pause = min(pause * 2, RETRY_PAUSE[1])
                continue
            if waited:
                log.warning("job %s: its %s is stored", job.id, what)
            return result

    def discard_outputs(self, job: Job) -> None:
        """Remove the job's folder, unless the job completed or another worker runs it now."""
        self._discard(job.id, self.store.get(job.id))

    def _discard(self, job_id: str, current: Job | None) -> None:
        """:meth:`discard_outputs` of a job as the store has it now (``current``)."""
        if current is None or (current.status is not JobStatus.COMPLETED and self._holds(current)):
            self.images.delete_job(job_id)

    def _holds(self, current: Job | None) -> bool:
        """The job (as the store has it now) is not running under another worker."""
        if current is None or current.status is not JobStatus.RUNNING or self.worker is None:
            return True
        return current.worker in (None, self.worker)
