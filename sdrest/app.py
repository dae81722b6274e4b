"""``create_app(settings)``: the Flask application with its services.

The app owns a :class:`~sdrest.services.Services` bundle in ``app.extensions["sdrest"]``: the
job store, the event bus, the supervisor of the generation worker, the auth state, the janitor
and the data folder's lock; closing it closes them all. Nothing native is
loaded in this process: the worker process does that, lazily, so start-up is fast.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

from sdrest.api import auth, compat, convert, downloads, events, generate, jobs, metrics, models, system, ui, video
from sdrest.api.errors import register_error_handlers
from sdrest.auth.web import setup_auth
from sdrest.cors import setup_cors
from sdrest.datadir import DataDirLock, make_private_dir, tighten_file
from sdrest.images import open_image_store
from sdrest.jobs import EventBus, open_store
from sdrest.jobs.store import redact_url, sqlite_path
from sdrest.metrics import ServerMetrics
from sdrest.models.hashing import HashCache
from sdrest.models.scanner import ModelLibrary
from sdrest.retention import Janitor
from sdrest.services import Services
from sdrest.settings import Settings
from sdrest.worker.downloads import DownloadLane
from sdrest.worker.pool import WorkerPool, Workers, recover_interrupted, scan_models
from sdrest.worker.remote import RemoteWorkers

log = logging.getLogger("sdrest")


def create_app(settings: Settings | None = None, *, start_worker: bool = True) -> Flask:
    settings = (settings or Settings()).resolved()
    make_private_dir(settings.data_dir)
    make_private_dir(settings.outputs_dir)
    lock = DataDirLock(settings.data_dir)  # before anything touches the job store
    if (store_file := sqlite_path(settings.store_url)) is not None:
        tighten_file(store_file)
    try:
        store = open_store(
            settings.store_url, pool_size=settings.store_pool_size, wait_seconds=settings.store_wait_seconds
        )
    except BaseException:  # a PostgreSQL server that cannot be reached: free the data folder
        lock.release()
        raise
    try:
        images = open_image_store(settings, store)
    except BaseException:
        store.close()
        lock.release()
        raise
    log.info("job store: %s", redact_url(settings.store_url))

    app = Flask("sdrest")
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_body_mb * 2**20)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    for blueprint in (
        auth.bp,
        generate.bp,
        video.bp,
        jobs.bp,
        events.bp,
        models.bp,
        downloads.bp,
        convert.bp,
        system.bp,
        metrics.bp,
        ui.bp,
    ):
        app.register_blueprint(blueprint)

    setup_auth(app, settings)
    setup_cors(app, settings)
    bus = EventBus(store)
    library = ModelLibrary(
        settings.model_folders(),
        HashCache(settings.data_dir / "hashes.sqlite3"),
        allow_symlinks=settings.allow_symlinks,
    )
    supervisor: Workers = (
        WorkerPool(settings, store, bus, library, images) if settings.worker else RemoteWorkers(settings, store, bus)
    )
    if start_worker:
        # Only a server that runs jobs decides what happens to the ones a stop cut off (an app
        # built without a worker, for a test or a tool, leaves the store as it found it).
        recover_interrupted(store, images, settings, [s.worker_id for s in supervisor.supervisors])
    svc = Services(
        settings=settings,
        store=store,
        images=images,
        bus=bus,
        supervisor=supervisor,
        library=library,
        long_requests=threading.BoundedSemaphore(settings.max_event_streams),
        auth=app.extensions["sdrest.auth"],
        lock=lock,
    )
    app.extensions["sdrest"] = svc
    compat.init_app(app)  # A1111 /sdapi/v1 and OpenAI /v1
    svc.janitor = Janitor(svc, auth_store=svc.auth.store)
    if settings.worker:
        # Downloads write into this server's own models folders, so this process runs them
        # (threads beside the generation worker, never in it). An API node without workers has
        # none: each worker host's own lane runs them (sdrest/worker/node.py).
        svc.downloads = DownloadLane.for_settings(store, bus, library, settings)
    svc.metrics = ServerMetrics(store, lambda: _worker_figures(supervisor), lambda: _gpu_devices(supervisor))
    if start_worker:
        # Scanning reads only headers (1,000 files in well under a second); in the background
        # anyway, so the first request is answered at once. Names resolve on disk meanwhile.
        threading.Thread(target=scan_models, args=(library,), name="sdrest-scan", daemon=True).start()
        supervisor.start()
        svc.janitor.start()
        if svc.downloads is not None:
            svc.downloads.start()
    return app


def _worker_figures(supervisor: Workers) -> dict[str, Any]:
    state = supervisor.state()
    return {
        "alive": state.alive,
        "starts": state.starts,
        "crashes": state.crashes,
        "resident_models": len(state.resident_models),
        "counters": dict(supervisor.counters),
    }


def _gpu_devices(supervisor: Workers) -> list[dict[str, Any]]:
    """The GPUs NVML lists on a CUDA build (none on a CPU build: nothing is asked)."""
    from sdrest._native.buildinfo import build_info
    from sdrest.gpus import gpu_report

    backends = supervisor.capabilities.get("backends", build_info().get("backends", []))
    devices: list[dict[str, Any]] = gpu_report(backends)["devices"]
    return devices


def close_app(app: Flask) -> None:
    """Stop the worker and background threads, close the stores and free the data folder."""
    app.extensions["sdrest"].close()
