"""Run queued jobs in a supervised worker process, one at a time.

The supervisor is one thread of the server process. It claims the next job from the store,
hands it to the worker process over a pipe, turns the worker's messages into store updates
and events, and watches the process: if it dies (native abort, segfault, OOM kill) the job is
marked failed with the signal and the library's last log lines, and a new worker starts.

Cancelling a running job stops it inside the library (``sd_cancel_generation``, a patch of
ours to the pinned source): the generation ends at its next sampling step, and the worker and
its loaded models stay as they were, so the next job starts without a reload. Only if the
library has not returned within ``--cancel-timeout`` seconds (a model load, which cannot be
interrupted, or an upscale) is the worker killed instead and a fresh one started.

Once the library is done with a generation, the worker writes its images in the background and
says "released": the job leaves the running slot (it stays "running" in the store, at its
"writing" stage) and the next job is sent at once, so its model load, encoding and sampling
overlap the writing. The written job's "done" (or "error") comes later and is applied like any
other. If the worker dies meanwhile, those jobs fail with it; if it is stopped or killed on
purpose (a server stop, a cancel that did not stop in place), they go back to the queue. Either
way their files are removed only once the worker is gone, so none is left behind.

Each job it claims carries a lease in the store, which :mod:`~sdrest.worker.membership` renews;
a cancel or stop asked on another node sharing the store reaches the running job through it.

While the store is unavailable (a database outage, logged once by the store), the running job
goes on; nothing new is claimed; checks of the store are skipped; and what must be stored (a
job's end) waits for it (:mod:`~sdrest.worker.outcomes`).

The pieces it drives: :mod:`~sdrest.worker.lifecycle` (the process and its pipe),
:mod:`~sdrest.worker.model_choice` (which model a job runs with) and
:mod:`~sdrest.worker.outcomes` (what a job's messages and end do to the store).
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from sdrest.errors import StoreUnavailable
from sdrest.images import ImageStore
from sdrest.jobs import EventBus, Job, JobStatus, JobStore
from sdrest.jobs.params import public_model_options
from sdrest.models.paths import ModelNotFoundError
from sdrest.settings import Settings
from sdrest.worker.lifecycle import CRASH_LOG_LEVEL, WorkerHandle, crash_error, describe_exit
from sdrest.worker.membership import Membership
from sdrest.worker.model_choice import ModelChoice, public_resident, resident_files
from sdrest.worker.outcomes import JobOutcomes

log = logging.getLogger("sdrest.supervisor")

#: How often a running job's row is read, so that a cancel made by another process sharing the
#: store (which cannot call :meth:`Supervisor.cancel_running`) stops it within about this long.
STORE_CHECK_SECONDS = 1.0
#: How often the supervisor tries the store again while it is unavailable.
STORE_RETRY_SECONDS = 1.0


@dataclass
class WorkerState:
    """What the rest of the server may read about the worker (a snapshot, under a lock)."""

    pid: int | None = None
    alive: bool = False
    starts: int = 0
    crashes: int = 0
    running_job: str | None = None
    running_owner: str | None = None
    loaded_model: str | None = None
    loaded_options: dict[str, Any] = field(default_factory=dict)
    resident_models: list[dict[str, Any]] = field(default_factory=list)  # least recently used first
    last_crash: dict[str, Any] | None = None


class Supervisor:
    """Owns the worker process and feeds it the queue."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        bus: EventBus,
        library: Any,
        images: ImageStore,
        *,
        worker_id: str | None = None,
        device: str | None = None,
    ) -> None:
        """``worker_id``: this worker's id in the store (default ``--worker-id``, or the host
        name); ``device``: its GPU (``--gpus``)."""
        self.settings = settings
        self.library = library
        self.store = store
        self.bus = bus
        self.counters: collections.Counter[str] = collections.Counter()
        self._state = WorkerState()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel_running: str | None = None
        self._cancel_mode = "all"
        self._cancel_refused: str | None = None  # the worker could not stop this job in place
        self._resident_files: frozenset[str] = frozenset()  # model files the worker holds loaded
        self._writing: dict[str, Job] = {}  # released by the library, their images being written
        self._thread: threading.Thread | None = None
        self._worker = WorkerHandle(settings, device)
        self.device = device
        self._models = ModelChoice(library, settings.model)
        self.worker_id = worker_id or settings.worker_name
        self.images = images
        self._outcomes = JobOutcomes(store, bus, images, self.counters, self.worker_id, stopping=self._stop)
        self._last_activity = time.monotonic()
        self.capabilities: dict[str, Any] = {}
        self._ready = threading.Event()
        self._stopping: set[str] = set()  # running jobs a stop was asked of (here or elsewhere)
        self.membership = Membership(
            store,
            self.worker_id,
            lease=settings.lease_seconds,
            max_interruptions=settings.max_interruptions,
            images=images,
            info=self._info,
            seen=self._seen,
        )

    # --- control (any thread) ---

    def start(self) -> None:
        """Join the job store as a worker (:class:`~sdrest.jobs.WorkerIdInUse` if a live worker
        has this id), then run."""
        self.membership.register()
        self._thread = threading.Thread(target=self._run, name="sdrest-supervisor", daemon=True)
        self._thread.start()
        self.membership.start()

    def request_stop(self) -> None:
        """Begin stopping (the running job goes back to the queue); :meth:`stop` waits."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stop_worker()
        if self._thread is not None:
            self.membership.stop()  # last: the jobs it held are back in the queue by now

    def notify(self) -> None:
        """The queue changed (a job was queued or cancelled): stop waiting, tell listeners."""
        self.wake()
        self.announce_queue()

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        self._wake.set()

    def announce_queue(self) -> None:
        """An ephemeral "queue" event: how many jobs wait and which one runs (none while the
        store is unavailable)."""
        try:
            counts = self.store.counts()
        except StoreUnavailable:
            return
        with self._lock:
            running = self._state.running_job
            owner = self._state.running_owner
        # "running_owner" is for the event stream to decide who may see the id; never sent.
        self.bus.emit(
            "queue", data={"queued": counts.get("queued", 0), "running": running, "running_owner": owner}, persist=False
        )

    def cancel_running(self, job_id: str, mode: str = "all") -> bool:
        """Stop ``job_id`` if the worker runs it; False if it does not (any more).

        ``mode`` "all" (the caller has already marked the job cancelled in the store): the
        library stops at its next sampling step. "new_latents" (the job stays running in the
        store): the image being sampled is finished and the job completes with the images of
        its batch done so far, or ends cancelled if there are none. Either way the worker and
        its models are kept; it is killed only after ``--cancel-timeout`` seconds without an
        answer. Safe from any thread; the A1111 interrupt and skip use it too.
        """
        if mode not in ("all", "new_latents"):
            raise ValueError(f"mode: expected 'all' or 'new_latents', not {mode!r}")
        with self._lock:
            if self._state.running_job != job_id:
                return False
            self._cancel_running, self._cancel_mode = job_id, mode
            self._stopping.add(job_id)
        self._wake.set()
        return True

    def _seen(self, running: dict[str, str | None]) -> None:
        """After a heartbeat: ``running`` are this worker's jobs still running in the store, with
        the stop asked of each. The running job stops if it is missing (cancelled on another
        node) or a stop was asked; a job claimed after the heartbeat read is checked first."""
        with self._lock:
            job_id = self._state.running_job
            if job_id is None or job_id in self._stopping:
                return
        if job_id in running:
            if running[job_id] is not None:
                self.cancel_running(job_id, str(running[job_id]))
            return
        self._stop_if_not_ours(job_id)

    def _stop_if_not_ours(self, job_id: str) -> None:
        """Stop the running job if the store says it is no longer running here: cancelled by
        another process sharing the store (an API node, a CLI), or its lease lost."""
        with self._lock:
            if job_id in self._stopping:
                return
        try:
            current = self.store.get(job_id)
        except StoreUnavailable:
            return  # cannot tell now: it runs on (its end waits for the store)
        if current is None or current.status is not JobStatus.RUNNING or current.worker != self.worker_id:
            log.info("job %s is no longer this worker's to run (cancelled elsewhere?): stopping it", job_id)
            self.cancel_running(job_id, "all")

    def _announce_self(self) -> None:
        """Tell the store what this worker does now: a new process or model, rare events that an
        API node should show at once. Not per job (two commits more per job, an fsync each on
        SQLite): the running job reaches the store's workers list with the next heartbeat, and
        each job's own row says where it runs at once."""
        try:
            self.membership.report()
        except StoreUnavailable:
            pass  # logged once by the store; the heartbeat thread tries again
        except Exception:  # the heartbeat thread tries again soon
            log.exception("heartbeat of worker %s failed", self.worker_id)

    def _info(self) -> dict[str, Any]:
        """What this worker says about itself in the store (``GET /api/v1/status`` lists it)."""
        state = self.state()
        return {
            "host": socket.gethostname(),
            # The name this node's download lane claims its rows under (its own models folder).
            "download_host": self.settings.worker_name,
            "device": self.device,
            "pid": os.getpid(),
            "worker_pid": state.pid,
            "alive": state.alive,
            "starts": state.starts,
            "crashes": state.crashes,
            "running_job": state.running_job,
            "running_owner": state.running_owner,
            "writing_jobs": len(self._writing),
            "loaded_model": state.loaded_model,
            "resident_models": [entry.get("name") for entry in state.resident_models],
            "default_model": self.default_model,
            "counters": dict(self.counters),
            "capabilities": self.capabilities,  # what an API node without workers tells its clients
        }

    def state(self) -> WorkerState:
        with self._lock:
            return WorkerState(**vars(self._state))

    def wait_ready(self, timeout: float) -> bool:
        """Block until a worker has started once (its capabilities are known)."""
        return self._ready.wait(timeout)

    @property
    def default_model(self) -> str | None:
        """What a request without ``model`` gets (None: nothing loaded and no --model)."""
        return self._models.current

    # --- the supervisor thread ---

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if not self._worker.alive():
                    try:
                        self._start_worker()
                    except RuntimeError as exc:
                        # A worker that cannot start (library missing, broken install) must not
                        # spin: retry with growing pauses; jobs stay queued meanwhile.
                        log.error("%s; retrying in %.0f s", exc, backoff)
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    backoff = 0.5
                    self._announce_self()  # API nodes see the new worker process at once
                    self._preload()
                    continue  # the worker may have died while loading: look again before claiming
                # Model-aware: a job for a loaded model may go first, a bounded number of times.
                job = self.store.claim_next(
                    loaded=self._resident_files or None,
                    overtake_limit=self.settings.model_overtake_limit,
                    worker=self.worker_id,
                    lease=self.settings.lease_seconds,
                )
                if job is None and self._writing:
                    self._drain()  # nothing to run yet: take the written jobs' reports meanwhile
                    self._wake.clear()
                    continue
                if job is None:
                    self._maybe_unload_idle()
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                try:
                    self._run_job(job)
                except Exception:
                    # Never leave a claimed job "running" behind a supervisor bug.
                    self._outcomes.failed(
                        job, {"code": "internal_error", "message": "the server failed to run this job"}
                    )
                    raise
                self._last_activity = time.monotonic()
            except StoreUnavailable:
                # Nothing can be claimed (the store logged why, once). Jobs whose images were
                # being written still report: their ends wait for the store.
                if self._writing and self._worker.conn is not None:
                    self._drain()
                else:
                    self._stop.wait(STORE_RETRY_SECONDS)
            except Exception:
                log.exception("supervisor loop error")
                time.sleep(0.5)

    def _run_job(self, job: Job) -> None:
        with self._lock:
            self._state.running_job = job.id
            self._state.running_owner = job.owner
            self._cancel_running = None
        self._worker.log_tail.clear()  # a crash report shows this job's lines, nobody else's
        self.announce_queue()
        try:
            try:
                current: Job | None = self.store.get(job.id)
            except StoreUnavailable:
                current = job  # just claimed; a cancel meanwhile still reaches it in _follow
            if current is None or current.status is not JobStatus.RUNNING:
                # Cancelled between the claim and now, before cancel_running could see it run.
                self.counters["cancelled"] += 1
                return
            try:
                model = self._models.for_job(job)
            except ModelNotFoundError as exc:
                self._outcomes.failed(job, {"code": "model_not_found", "message": str(exc), "field": exc.field})
                return
            inputs = job.params.get("_inputs")
            if inputs and not self._fetch_inputs(job, inputs):
                return
            try:
                try:
                    if self._worker.conn is None:
                        raise BrokenPipeError("no worker")
                    self._worker.conn.send({"op": "run", "job": job.to_dict(), "model": model})
                except (OSError, ValueError):
                    # The worker died before the job reached it: not the job's fault, it runs again.
                    log.warning("the worker was gone before job %s reached it: queued again", job.id)
                    self._stop_worker(kill=True)
                    self._outcomes.requeued(job)
                    return
                self._follow(job)
            finally:
                if inputs:  # the library has read them (the job is over, or writing its images)
                    self.images.drop_fetched_inputs(self.settings.data_dir, inputs)
        finally:
            with self._lock:
                self._state.running_job = None
                self._state.running_owner = None
                self._cancel_running = None
                self._stopping.discard(job.id)
            self.announce_queue()

    def _fetch_inputs(self, job: Job, inputs: str) -> bool:
        """Bring the job's input images into this machine's data folder, where the worker
        process reads them (from the database with ``--image-store database``); False if the
        job cannot run now (back in the queue during an outage, or failed)."""
        try:
            self.images.fetch_inputs(self.settings.data_dir, inputs)
        except StoreUnavailable:
            self._outcomes.requeued(job)  # not the job's fault: it runs once the database is back
            return False
        except (OSError, ValueError) as exc:
            log.warning("job %s: its input images could not be fetched: %s", job.id, exc)
            self._outcomes.failed(job, {"code": "inputs_not_fetched", "message": f"the input images: {exc}"})
            return False
        return True

    def _preload(self) -> None:
        """Load the current model into a fresh worker before the next job needs it."""
        spec = self._models.preload_spec()
        if spec is None:
            return
        name = spec["name"]
        assert self._worker.conn is not None
        answer = self._control({"op": "load", "model": spec})
        if answer is None:
            log.error("the worker died while loading %s", name)
            self._models.preload_failed(name)
        elif answer.get("type") == "error":
            log.error("could not load %s: %s", name, answer["error"].get("message"))
            self._models.preload_failed(name)

    def _control(self, op: dict[str, Any], *, keep_spec: bool = False) -> dict[str, Any] | None:
        """Send a load/unload outside any job and relay the worker's messages until it answers
        ("loaded" or "error"); None if the worker died meanwhile."""
        conn = self._worker.conn
        assert conn is not None
        conn.send(op)
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self._stop_worker(kill=True)
                return None
            if not self._relay(message, keep_spec=keep_spec):
                return message

    def _relay(self, message: dict[str, Any], *, keep_spec: bool = False) -> bool:
        """Apply the messages that belong to no job (log lines, model changes); True if it was one."""
        kind = message.get("type")
        if kind == "log":
            if message["level"] >= CRASH_LOG_LEVEL:
                self._worker.log_tail.append(message["message"])
            logging.getLogger(message.get("name") or "sdrest.worker").log(message["level"], "%s", message["message"])
            return True
        if kind == "model":
            self._set_loaded(message, keep_spec=keep_spec)
            return True
        if kind == "cancel_refused":
            self._cancel_refused = message.get("job_id")
            return True
        return False

    def _set_loaded(self, message: dict[str, Any], *, keep_spec: bool = False) -> None:
        """The worker says what it has loaded now (after a failed load: the previous model).

        ``keep_spec``: an idle unload; the next job without "model" loads the same model again.
        """
        with self._lock:
            self._state.loaded_model = message["name"]
            self._state.loaded_options = public_model_options(message.get("options") or {})
            if "resident" in message:
                self._state.resident_models = [public_resident(entry) for entry in message["resident"]]
                self._resident_files = resident_files(message["resident"])
        if not keep_spec:
            self._models.loaded(message)
        self._announce_self()

    def _maybe_unload_idle(self) -> None:
        """--idle-unload-minutes: free the model's memory when nothing ran for that long."""
        minutes = self.settings.idle_unload_minutes
        with self._lock:
            loaded = self._state.loaded_model
        if not minutes or loaded is None or time.monotonic() - self._last_activity < minutes * 60:
            return
        log.info("unloading %s after %g idle minutes", loaded, minutes)
        self._control({"op": "unload"}, keep_spec=True)
        self._last_activity = time.monotonic()

    def _follow(self, job: Job) -> None:
        """Relay the worker's messages for ``job`` until it ends one way or another."""
        conn = self._worker.conn
        assert conn is not None
        cancel_deadline: float | None = None
        next_check = time.monotonic() + STORE_CHECK_SECONDS
        while True:
            if time.monotonic() >= next_check:
                self._stop_if_not_ours(job.id)  # cancelled through another process, or lost
                next_check = time.monotonic() + STORE_CHECK_SECONDS
            with self._lock:
                mode = self._cancel_mode if self._cancel_running == job.id else None
                self._cancel_running = None if mode is not None else self._cancel_running
            if mode is not None:
                log.info("cancelling running job %s (%s)", job.id, mode)
                self._cancel_refused = None
                try:
                    conn.send({"op": "cancel", "job_id": job.id, "mode": mode})
                except (OSError, ValueError):
                    pass  # the worker is gone: the crash check below reports it
                cancel_deadline = cancel_deadline or time.monotonic() + self.settings.cancel_timeout
            if cancel_deadline is not None and (self._cancel_refused == job.id or time.monotonic() > cancel_deadline):
                log.warning(
                    "job %s did not stop in place%s: restarting the worker",
                    job.id,
                    "" if self._cancel_refused == job.id else f" within {self.settings.cancel_timeout:g} s",
                )
                self._stop_worker(kill=True)
                self._outcomes.cancelled(job)  # a "new_latents" stop is still running in the store
                self.counters["cancel_kills"] += 1
                return
            if self._stop.is_set():
                # A server stop is never the job's fault: it goes back to the queue, in its place.
                log.info("stopping: job %s goes back to the queue", job.id)
                self._stop_worker(kill=True)
                self._outcomes.requeued(job)
                return
            message, gone = self._receive(conn, job)
            if gone:
                return
            if message is None or self._relay(message):
                continue
            if message.get("job_id") not in (None, job.id):
                self._apply_written(message)
                continue
            if message.get("type") == "released":
                self._writing[job.id] = job  # the library is free: the next job may go
                return
            if self._outcomes.apply(job, message):
                return

    def _drain(self, timeout: float = 1.0) -> None:
        """Relay the worker's messages until every job being written has reported, a job is
        queued (the queue may have a job now) or ``timeout`` seconds passed."""
        conn = self._worker.conn
        assert conn is not None
        deadline = time.monotonic() + timeout
        while self._writing and not self._wake.is_set() and time.monotonic() < deadline:
            if self._stop.is_set():
                self._stop_worker(kill=True)  # the written jobs go back to the queue
                return
            message, gone = self._receive(conn, None)
            if gone:
                return
            if message is not None and not self._relay(message):
                self._apply_written(message)

    def _receive(self, conn: Connection, job: Job | None) -> tuple[dict[str, Any] | None, bool]:
        """The worker's next message (None after 50 ms without one), and whether the worker died:
        then its crash is reported (``job`` and the jobs being written failed)."""
        try:
            message: dict[str, Any] | None = conn.recv() if conn.poll(0.05) else None
        except (EOFError, OSError):
            self._on_crash(job)
            return None, True
        if message is None and not self._worker.alive():
            self._on_crash(job)
            return None, True
        return message, False

    def _apply_written(self, message: dict[str, Any]) -> None:
        """A message about a job whose images are being written (its "done", mostly)."""
        job = self._writing.get(message.get("job_id") or "")
        if job is None:
            log.warning(
                "worker message %r for job %s, which it does not run", message.get("type"), message.get("job_id")
            )
        elif self._outcomes.apply(job, message):
            del self._writing[job.id]

    def _on_crash(self, job: Job | None) -> None:
        """The worker died running ``job`` (if any) or writing images: they all fail with it."""
        code = self._worker.exit_code()
        cut_off = [*([job] if job is not None else []), *self._writing.values()]
        self._writing.clear()
        log.error(
            "worker crashed (%s) while running job%s %s",
            describe_exit(code),
            "s" if len(cut_off) > 1 else "",
            ", ".join(j.id for j in cut_off),
        )
        error = crash_error(code, list(self._worker.log_tail)[-20:])
        with self._lock:
            self._state.crashes += 1
            first = cut_off[0] if cut_off else None
            self._state.last_crash = {
                "job_id": first.id if first else None,
                "owner": first.owner if first else None,
                "time": time.time(),
                **error,
            }
            self._state.alive = False
            self._state.loaded_model = None
            self._state.resident_models = []
            self._resident_files = frozenset()
        self._worker.close()
        for lost in cut_off:
            if lost is job and self._retry_elsewhere(job):
                log.warning("job %s goes back to the queue for another worker (its first crash)", job.id)
                self._outcomes.requeued(job, crashed=True)
                continue
            # The log lines are the running job's: another job's are another user's business.
            self._outcomes.failed(lost, error if lost is job else {**error, "log": []})

    def _retry_elsewhere(self, job: Job) -> bool:
        """With other live workers (this server's ``--workers``, other nodes), a job whose worker
        died gets one more try: a worker killed from outside (the OOM killer, a GPU fault,
        kill -9) is not the job's fault. A second crash fails it: by then the job itself is the
        likely cause. A lone worker fails it at once, as it always did."""
        if job.crashes > 0:
            return False
        now = time.time()
        try:
            workers = self.store.workers()
        except StoreUnavailable:
            return False  # other workers unknown: as a lone worker
        return any(w.id != self.worker_id and now - w.heartbeat_at < self.settings.lease_seconds for w in workers)

    # --- the worker process ---

    def _start_worker(self) -> None:
        hello = self._worker.start()
        self.capabilities = hello.get("capabilities") or self.capabilities
        self._ready.set()
        with self._lock:
            self._state.pid = hello.get("pid")
            self._state.alive = True
            self._state.starts += 1
            self._state.loaded_model = None
            self._state.resident_models = []
            self._resident_files = frozenset()

    def _stop_worker(self, kill: bool = False) -> None:
        if not self._worker.stop(kill=kill):
            return
        with self._lock:
            self._state.alive = False
            self._state.loaded_model = None
            self._state.resident_models = []
            self._resident_files = frozenset()
        # Stopped on purpose, not by their fault: jobs whose images were being written run again
        # (their files go now that the worker, and its writer, are gone).
        writing, self._writing = list(self._writing.values()), {}
        for job in writing:
            log.info("job %s goes back to the queue: its images were being written", job.id)
            self._outcomes.requeued(job)
