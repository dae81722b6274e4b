"""An API node's view of generation workers that run elsewhere (``serve --no-worker``).

The workers (``sdrest worker``, on this machine or others) register in the shared job store
and say at each heartbeat what they can do and what they hold (:mod:`~sdrest.worker.membership`).
This node reads that to answer what the API asks of its workers: capabilities, the default
model, the state shown by ``GET /api/v1/status``. A cancel needs nothing more than the store:
the worker running the job reads its row every second and stops it.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from sdrest.jobs import EventBus, JobStore, WorkerRecord
from sdrest.settings import Settings
from sdrest.worker.supervisor import Supervisor, WorkerState

#: How long a read of the workers' rows is reused (every request asks for capabilities).
REFRESH_SECONDS = 1.0


class RemoteWorkers:
    """The workers registered in the store, as one (the same interface as the local pool)."""

    def __init__(self, settings: Settings, store: JobStore, bus: EventBus) -> None:
        self.supervisors: list[Supervisor] = []  # none runs here
        self.settings = settings
        self.store = store
        self.bus = bus
        self._lock = threading.Lock()
        self._live: list[WorkerRecord] = []
        self._read_at = float("-inf")

    def _workers(self) -> list[WorkerRecord]:
        """The live workers (heartbeat younger than a lease), read at most once per second."""
        with self._lock:
            if time.monotonic() - self._read_at > REFRESH_SECONDS:
                now = time.time()
                self._live = [w for w in self.store.workers() if now - w.heartbeat_at < self.settings.lease_seconds]
                self._read_at = time.monotonic()
            return list(self._live)

    # --- lifetime: nothing of ours runs ---

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def wait_ready(self, timeout: float) -> bool:
        """Block until a live worker has said what it can do."""
        deadline = time.monotonic() + timeout
        while not self.capabilities:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    # --- what the API asks ---

    @property
    def capabilities(self) -> dict[str, Any]:
        return next((w.info["capabilities"] for w in self._workers() if w.info.get("capabilities")), {})

    @property
    def default_model(self) -> str | None:
        return next((m for w in self._workers() if (m := w.info.get("default_model"))), self.settings.model)

    @property
    def counters(self) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for worker in self._workers():
            total.update(worker.info.get("counters") or {})
        return total

    def state(self) -> WorkerState:
        infos = [w.info for w in self._workers()]
        lead = next((info for info in infos if info.get("running_job")), infos[0] if infos else {})
        return WorkerState(
            pid=None,
            alive=bool(infos) and all(info.get("alive") for info in infos),
            starts=sum(int(info.get("starts") or 0) for info in infos),
            crashes=sum(int(info.get("crashes") or 0) for info in infos),
            running_job=lead.get("running_job"),
            running_owner=lead.get("running_owner"),
            loaded_model=lead.get("loaded_model"),
            resident_models=[],
        )

    def workers(self) -> list[tuple[Supervisor, WorkerState]]:
        return []  # none is this node's: GET /status lists them from the store

    def cancel_running(self, job_id: str, mode: str = "all") -> bool:
        """The store already says "cancelled" ("all"): its worker sees that within a second.
        Another mode is asked of the worker through the store, at its next heartbeat."""
        if mode == "all":
            job = self.store.get(job_id)
            return job is not None and job.worker is not None
        return self.store.request_stop(job_id, mode)

    def notify(self) -> None:
        self.announce_queue()  # the workers poll the queue

    def announce_queue(self) -> None:
        counts = self.store.counts()
        self.bus.emit(
            "queue", data={"queued": counts.get("queued", 0), "running": None, "running_owner": None}, persist=False
        )
