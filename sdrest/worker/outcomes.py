"""What happens to a running job, written to the job store, the event bus and the counters.

A job that does not complete keeps no files: a worker killed between writing its images and
reporting them would otherwise leave files that no job record names. A completed job's files go
to the image store (:meth:`~sdrest.images.ImageStore.publish`: nothing to do for a folder, the
rows of the database's ``job_files`` otherwise) before its state is stored, so a client that sees
it completed finds them on every node.

Every change names this worker (``worker``): a worker whose lease ran out while it was slow or
cut off has lost the job to another, and nothing it reports afterwards may end that other
worker's attempt or remove its files.
"""

from __future__ import annotations

import base64
import collections
import logging
from typing import Any

from sdrest.images import ImageStore
from sdrest.jobs import EventBus, Job, JobStatus, JobStore

log = logging.getLogger("sdrest.supervisor")


class JobOutcomes:
    """Progress, previews and the end of each job the worker runs."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        images: ImageStore,
        counters: collections.Counter[str],
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.worker = worker
        self.bus = bus
        self.images = images
        self.counters = counters

    def apply(self, job: Job, message: dict[str, Any]) -> bool:
        """Apply one worker message about ``job``; True when the job is over."""
        kind = message.get("type")
        if kind == "progress":
            progress: dict[str, Any] = {k: message[k] for k in ("step", "steps", "stage") if k in message}
            if self.store.update_progress(job.id, **progress):
                self.bus.emit("progress", job_id=job.id, owner=job.owner, data=progress, persist=False)
            return False
        if kind == "preview":
            image = "data:image/png;base64," + base64.b64encode(message["png"]).decode()
            data = {"step": message["step"], "image": image}
            self.bus.emit("preview", job_id=job.id, owner=job.owner, data=data, persist=False)
            return False
        if kind == "done":
            result = message["result"]
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
        except Exception as exc:  # a database hiccup must not leave it running
            log.exception("job %s: its files could not be stored", job.id)
            self.failed(job, {"code": "images_not_stored", "message": f"the job's files could not be stored: {exc}"})
            return False
        return True

    def cancelled(self, job: Job) -> None:
        """The job stopped on a cancel (a "new_latents" stop is still running in the store)."""
        current = self.store.get(job.id)
        self._discard(job.id, current)
        if self._holds(current):
            self.store.cancel(job.id)
        self.counters["cancelled"] += 1

    def failed(self, job: Job, error: dict[str, Any], timings: dict[str, float] | None = None) -> None:
        # Files first: a client that sees the job failed must not find its folder still there.
        self.discard_outputs(job)
        if self.store.fail(job.id, error, timings, worker=self.worker) is not None:
            self.counters["failed"] += 1

    def requeued(self, job: Job, *, crashed: bool = False) -> None:
        """Back to its place in the queue, without the files of the attempt that was cut off
        (``crashed``: its worker process died running it)."""
        self.discard_outputs(job)  # before it is queued: its next attempt writes the same folder
        self.store.requeue(job.id, worker=self.worker, crashed=crashed)

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
