"""Delete finished jobs, their images and inputs once they are older than the retention."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sdrest.errors import StoreUnavailable
from sdrest.jobfiles import remove_job_files

if TYPE_CHECKING:
    from sdrest.auth.store import AuthStore
    from sdrest.services import Services

log = logging.getLogger("sdrest.retention")

#: Seconds between sweeps.
INTERVAL = 600.0
#: Persisted events kept for Last-Event-ID replay.
KEEP_EVENTS = 100_000
#: Days of authentication attempts kept in the audit table (the log file keeps its own history).
AUDIT_DAYS = 90.0


class Janitor:
    """A background thread that applies ``job_retention_hours`` every few minutes, and keeps the
    auth store's audit table and revocation list from growing without bound."""

    def __init__(self, services: Services, interval: float = INTERVAL, *, auth_store: AuthStore | None = None) -> None:
        self.services = services
        self.auth_store = auth_store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sdrest-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def sweep(self) -> int:
        """One pass; returns how many jobs were deleted."""
        svc = self.services
        hours = svc.settings.job_retention_hours
        deleted = 0
        if hours > 0:
            for job in svc.store.purge_finished(time.time() - hours * 3600):
                remove_job_files(svc.settings, svc.images, job.id, job.params)
                deleted += 1
        svc.store.purge_events(KEEP_EVENTS)
        if self.auth_store is not None:
            self.auth_store.purge_attempts(time.time() - AUDIT_DAYS * 86400)
            self.auth_store.purge_expired_revocations()
        if deleted:
            log.info("retention: deleted %d finished jobs older than %g h", deleted, hours)
        return deleted

    def _run(self) -> None:
        while not self._stop.wait(self.interval if self._thread else 0):
            try:
                self.sweep()
            except StoreUnavailable as exc:  # an outage (logged by the store): the next sweep does it
                log.warning("retention sweep skipped: %s", exc)
            except Exception:
                log.exception("retention sweep failed")
