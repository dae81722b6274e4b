"""The shared services of one server, kept in ``app.extensions["sdrest"]``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import current_app

from sdrest.jobs import EventBus, JobStore
from sdrest.models.scanner import ModelLibrary
from sdrest.settings import Settings
from sdrest.worker.supervisor import Supervisor


@dataclass
class Services:
    settings: Settings
    store: JobStore
    bus: EventBus
    supervisor: Supervisor
    library: ModelLibrary
    #: Long-lived requests (event streams, wait=true) each hold a server thread; this bounds
    #: them so ordinary requests always find a free thread.
    long_requests: threading.BoundedSemaphore
    started_at: float = field(default_factory=time.time)

    def close(self) -> None:
        self.supervisor.stop()
        if self.library.hash_cache is not None:
            self.library.hash_cache.close()
        self.bus.close()
        self.store.close()


def services() -> Services:
    return current_app.extensions["sdrest"]
