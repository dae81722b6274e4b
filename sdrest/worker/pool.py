"""The server's generation workers, seen as one by the API.

``--workers N`` (or ``--gpus 0,1``) runs N supervisors in the server process, each with its own
worker process, device and loaded models, all claiming from the one job store: with the store's
claims, leases and model affinity, jobs go to whichever worker is free, a job for a model a
worker holds preferably to that worker. With one worker (the default) the pool is that worker.

The API asks the pool what it used to ask the one supervisor: capabilities, the default model,
a snapshot of the worker state (for ``GET /api/v1/status``: the figures summed, the running job
and the loaded model of the first busy worker, each worker listed), and to cancel a running job
(whichever worker runs it).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Protocol

from sdrest.images import ImageStore
from sdrest.jobs import EventBus, JobStore
from sdrest.settings import Settings
from sdrest.worker.supervisor import Supervisor, WorkerState

log = logging.getLogger("sdrest")


def recover_interrupted(store: JobStore, images: ImageStore, settings: Settings, workers: list[str]) -> None:
    """Settle the jobs a stop of this process cut off: those its workers held (worker ids are
    kept across restarts). Other workers' jobs (other processes, other nodes) are theirs, or,
    if they died too, their leases'. Used by ``sdrest serve`` and ``sdrest worker`` alike."""
    for worker in workers:
        for job in store.recover_interrupted(
            requeue=settings.requeue_interrupted, max_interruptions=settings.max_interruptions, worker=worker
        ):
            log.warning("job %s was interrupted by a stop of its worker %s: now %s", job.id, worker, job.status.value)
            images.delete_job(job.id)  # what the cut-off attempt wrote


def scan_models(library: Any) -> None:
    """Scan the model folders (headers only; run in the background so start-up does not wait)."""
    result = library.scan()
    log.info("model scan: %d models in %.2f s (%d skipped)", len(result.entries), result.seconds, len(result.skipped))


class Workers(Protocol):
    """What the API asks of the server's generation workers: this server's own
    (:class:`WorkerPool`) or, on an API node, those registered in the shared store
    (:class:`~sdrest.worker.remote.RemoteWorkers`)."""

    supervisors: list[Supervisor]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wait_ready(self, timeout: float) -> bool: ...

    @property
    def capabilities(self) -> dict[str, Any]: ...

    @property
    def default_model(self) -> str | None: ...

    @property
    def counters(self) -> collections.Counter[str]: ...

    def state(self) -> WorkerState: ...

    def workers(self) -> list[tuple[Supervisor, WorkerState]]: ...

    def cancel_running(self, job_id: str, mode: str = "all") -> bool: ...

    def notify(self) -> None: ...

    def announce_queue(self) -> None: ...


class WorkerPool:
    """One :class:`Supervisor` per worker (``--workers``/``--gpus``)."""

    def __init__(self, settings: Settings, store: JobStore, bus: EventBus, library: Any, images: ImageStore) -> None:
        devices = settings.worker_devices
        name = settings.worker_name
        self.supervisors = [
            Supervisor(
                settings,
                store,
                bus,
                library,
                images,
                worker_id=name if len(devices) == 1 else f"{name}-{_slot_name(slot, device)}",
                device=device,
            )
            for slot, device in enumerate(devices)
        ]

    # --- lifetime ---

    def start(self) -> None:
        for supervisor in self.supervisors:
            supervisor.start()

    def stop(self) -> None:
        # Each stop waits for its worker (up to its timeout): tell them all first.
        for supervisor in self.supervisors:
            supervisor.request_stop()
        for supervisor in self.supervisors:
            supervisor.stop()

    def wait_ready(self, timeout: float) -> bool:
        """Block until one worker has started once (its capabilities are known)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(s.wait_ready(0) for s in self.supervisors):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.supervisors[0].wait_ready(min(remaining, 0.1))

    # --- what the API asks ---

    @property
    def capabilities(self) -> dict[str, Any]:
        """What the library can do (every worker runs the same library)."""
        return next((s.capabilities for s in self.supervisors if s.capabilities), {})

    @property
    def default_model(self) -> str | None:
        return next((m for s in self.supervisors if (m := s.default_model) is not None), None)

    @property
    def counters(self) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for supervisor in self.supervisors:
            total.update(supervisor.counters)
        return total

    def state(self) -> WorkerState:
        """One snapshot for all: figures summed, the first busy worker's job and model."""
        states = [s.state() for s in self.supervisors]
        if len(states) == 1:
            return states[0]
        lead = next((st for st in states if st.running_job is not None), states[0])
        crashes = [st.last_crash for st in states if st.last_crash is not None]
        resident: dict[str, dict[str, Any]] = {}
        for st in states:
            for entry in st.resident_models:
                resident.setdefault(entry.get("name") or "", entry)
        return WorkerState(
            pid=lead.pid,
            alive=all(st.alive for st in states),
            starts=sum(st.starts for st in states),
            crashes=sum(st.crashes for st in states),
            running_job=lead.running_job,
            running_owner=lead.running_owner,
            loaded_model=lead.loaded_model,
            loaded_options=lead.loaded_options,
            resident_models=list(resident.values()),
            last_crash=max(crashes, key=lambda crash: crash["time"]) if crashes else None,
        )

    def workers(self) -> list[tuple[Supervisor, WorkerState]]:
        """Each worker with its state snapshot."""
        return [(s, s.state()) for s in self.supervisors]

    def running_jobs(self) -> list[tuple[str, str | None]]:
        """(job id, owner) of every job a worker runs now."""
        return [(st.running_job, st.running_owner) for _, st in self.workers() if st.running_job is not None]

    def cancel_running(self, job_id: str, mode: str = "all") -> bool:
        """Stop ``job_id`` on the worker that runs it (see :meth:`Supervisor.cancel_running`)."""
        return any(s.cancel_running(job_id, mode) for s in self.supervisors)

    def notify(self) -> None:
        """The queue changed: wake every idle worker (one claims), tell listeners once."""
        for supervisor in self.supervisors:
            supervisor.wake()
        self.announce_queue()

    def announce_queue(self) -> None:
        self.supervisors[0].announce_queue()


def _slot_name(slot: int, device: str | None) -> str:
    return f"gpu{device}" if device is not None else str(slot)
