"""This worker's membership of the job store: its registration, heartbeat and leases.

Every claimed job carries a lease (``--lease-seconds``). A heartbeat thread renews the leases of
this worker's jobs a few times per lease, refreshes what the worker says about itself (shown by
``GET /api/v1/status``), and learns from the store what other nodes did to those jobs: a job
cancelled on another API node, or a stop asked there, reaches this worker at its next heartbeat.
Each heartbeat also settles the jobs of workers that stopped renewing theirs (killed, powered
off, cut off): they go back to the queue, or fail as "worker_lost" after ``--max-interruptions``.

The heartbeat runs in its own thread so that a long model load or a busy supervisor never lets a
lease lapse.

*After a database outage* every lease may have run out, though the workers holding them are
alive and some finished their jobs meanwhile (their ends wait to be stored). So a worker whose
heartbeat failed for want of the store settles no other worker's lapsed lease until the store
has answered it for a whole lease again: by then every live worker has renewed its own (three
heartbeats, if every worker of the cluster has the same ``--lease-seconds``) and stored what
waited, and only the leases of workers that are really gone are settled. A worker that lost
only its own link to the database (the others kept theirs) still loses its jobs when its lease
runs out, as designed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sdrest.errors import StoreUnavailable
from sdrest.images import ImageStore
from sdrest.jobs import JobStore, JobStoreError, WorkerIdInUse

log = logging.getLogger("sdrest.supervisor")

#: Heartbeats per lease: a lease survives two missed heartbeats.
BEATS_PER_LEASE = 3


class Membership:
    """Registers ``worker`` in ``store`` and keeps its leases alive until :meth:`stop`.

    ``info`` says what the worker is doing (called at each heartbeat); ``seen`` gets, after each
    heartbeat, the worker's jobs that are still running with the stop asked of each (None or a
    cancel mode).
    """

    def __init__(
        self,
        store: JobStore,
        worker: str,
        *,
        lease: float,
        max_interruptions: int,
        images: ImageStore,
        info: Callable[[], dict[str, Any]],
        seen: Callable[[dict[str, str | None]], None],
    ) -> None:
        self.store = store
        self.worker = worker
        self.instance = uuid.uuid4().hex  # this process: a second live one with the same id is refused
        self.lease = lease
        self.max_interruptions = max_interruptions
        self.images = images
        self._info = info
        self._seen = seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Since when (monotonic) the store has answered every heartbeat; None: it just failed.
        self._reachable_since: float | None = float("-inf")

    def register(self) -> None:
        """Join the store (raises :class:`~sdrest.jobs.WorkerIdInUse` if a live worker has the id).

        A registration whose heartbeat is still fresh but whose process, on this host, is gone
        is this worker's previous life (killed, crashed): it is replaced at once, so a restart
        does not wait for the old heartbeat to age.
        """
        info = self._info()
        try:
            self.store.register_worker(self.worker, self.instance, info, lease=self.lease)
        except WorkerIdInUse:
            previous = next((w for w in self.store.workers() if w.id == self.worker), None)
            if previous is None or not _dead_here(previous.info, info):
                raise
            log.info(
                "worker %s: its previous process (pid %s) is gone; taking its place", self.worker, previous.info["pid"]
            )
            self.store.register_worker(self.worker, self.instance, info, lease=self.lease, replace=previous.instance)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sdrest-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and leave the store's list of workers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.store.unregister_worker(self.worker, self.instance)
        except JobStoreError as exc:  # the store is gone; the row ages out of "alive" by itself
            log.warning("could not unregister worker %s: %s", self.worker, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.lease / BEATS_PER_LEASE):
            try:
                self.beat()
            except StoreUnavailable:
                self._reachable_since = None  # logged once by the store; tried again next beat
            except Exception:  # a store hiccup must not end the heartbeat
                log.exception("heartbeat of worker %s failed", self.worker)

    def report(self) -> dict[str, str | None]:
        """Renew the leases and say what the worker does now (also between heartbeats: when it
        starts a job or loads a model, so API nodes see it at once); its running jobs."""
        try:
            running = self.store.heartbeat(self.worker, self.instance, self._info(), lease=self.lease)
        except StoreUnavailable:
            self._reachable_since = None
            raise
        if self._reachable_since is None:
            self._reachable_since = time.monotonic()
        if running is None:
            # Our heartbeat lapsed long enough for another process to take the id (or the row
            # was removed): join again, or say loudly why not. Our jobs' leases may be lost.
            log.error("worker %s lost its registration; registering again", self.worker)
            self.register()
            running = {}
        return running

    def beat(self) -> None:
        """One heartbeat: renew, report, and settle other workers' lapsed leases."""
        self._seen(self.report())
        since = self._reachable_since
        if since is None or time.monotonic() - since < self.lease:
            return  # back from an outage: every live worker renews its own leases first
        for job in self.store.expire_leases(max_interruptions=self.max_interruptions, sparing=self.worker):
            log.warning("job %s: its worker stopped renewing the lease; now %s", job.id, job.status.value)
            self.images.delete_job(job.id)  # the cut-off attempt's files, if any are stored


def _dead_here(recorded: dict[str, Any], mine: dict[str, Any]) -> bool:
    """The recorded worker ran on this host and its process no longer exists."""
    pid = recorded.get("pid")
    if recorded.get("host") != mine.get("host") or not isinstance(pid, int) or pid == mine.get("pid"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
