"""The shared services of one server, kept in ``app.extensions["sdrest"]``.

One object owns everything that must be stopped or closed when the app ends, so
:func:`sdrest.app.close_app` needs to know only this key.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app

from sdrest.images import ImageStore
from sdrest.jobs import EventBus, JobStore
from sdrest.models.scanner import ModelLibrary
from sdrest.settings import Settings
from sdrest.worker.pool import Workers

if TYPE_CHECKING:
    from sdrest.auth.web import AuthServices
    from sdrest.datadir import DataDirLock
    from sdrest.metrics import ServerMetrics
    from sdrest.retention import Janitor
    from sdrest.worker.downloads import DownloadLane


@dataclass
class Services:
    settings: Settings
    store: JobStore
    #: Where finished jobs' files are read from and deleted (a folder, or the database).
    images: ImageStore
    bus: EventBus
    #: The generation workers (one unless --workers/--gpus), seen as one.
    supervisor: Workers
    library: ModelLibrary
    #: Long-lived requests (event streams, wait=true) each hold a server thread; this bounds
    #: them so ordinary requests always find a free thread.
    long_requests: threading.BoundedSemaphore
    #: The auth layer's own state (also ``app.extensions["sdrest.auth"]``, where it looks it up).
    auth: AuthServices
    #: Held while the app lives: one server per data folder.
    lock: DataDirLock
    janitor: Janitor | None = None
    #: GET /metrics (Prometheus); fed by the store's events.
    metrics: ServerMetrics | None = None
    #: The threads that run model downloads into this server's models folders (started with the worker).
    downloads: DownloadLane | None = None
    started_at: float = field(default_factory=time.time)

    def close(self) -> None:
        """Stop the background threads and the worker, close the databases, free the data folder."""
        if self.janitor is not None:
            self.janitor.stop()
        if self.downloads is not None:
            self.downloads.stop()
        self.supervisor.stop()
        if self.metrics is not None:
            self.metrics.close()
        if self.library.hash_cache is not None:
            self.library.hash_cache.close()
        self.bus.close()
        self.store.close()
        self.auth.close()
        self.lock.release()


def services() -> Services:
    return current_app.extensions["sdrest"]
