"""What happens to a running job, written to the job store, the event bus and the counters.

A job that does not complete keeps no files: a worker killed between writing its images and
reporting them would otherwise leave files that no job record names.

Every change names this worker (``worker``): a worker whose lease ran out while it was slow or
cut off has lost the job to another, and nothing it reports afterwards may end that other
worker's attempt or remove its files.
"""

from __future__ import annotations

import base64
import collections
import logging
from pathlib import Path
from typing import Any

from sdrest.jobs import EventBus, Job, JobStatus, JobStore
from sdrest.outputs import discard_job_outputs

log = logging.getLogger("sdrest.supervisor")


class JobOutcomes:
    """Progress, previews and the end of each job the worker runs."""

    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        outputs_dir: Path,
        counters: collections.Counter[str],
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.worker = worker
        self.bus = bus
        self.outputs_dir = outputs_dir
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
            discard_job_outputs(self.outputs_dir, job_id)

    def _holds(self, current: Job | None) -> bool:
        """The job (as the store has it now) is not running under another worker."""
        if current is None or current.status is not JobStatus.RUNNING or self.worker is None:
            return True
        return current.worker in (None, self.worker)
