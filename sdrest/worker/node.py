"""``sdrest worker``: generation workers without an HTTP server.

A worker node runs what ``sdrest serve`` runs for generation (one supervised worker process per
``--workers``/``--gpus`` slot) against a job store that API nodes (``sdrest serve --no-worker``)
share: it claims jobs, renews their leases, writes their images to ``--output-dir`` and stores
them in the image store (``--image-store``: the database with a PostgreSQL store, so no folder is
shared; with ``files`` on several machines the folder must be shared, see docs/scale-out.md) and
reports to the store. It serves no HTTP and holds no data-folder lock, so several can share a data
folder with an API node on one machine.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from sdrest.datadir import make_private_dir
from sdrest.images import open_image_store
from sdrest.jobs import EventBus, open_store
from sdrest.jobs.store import redact_url
from sdrest.logs import setup_logging
from sdrest.models.hashing import HashCache
from sdrest.models.scanner import ModelLibrary
from sdrest.settings import Settings
from sdrest.worker.downloads import DownloadLane
from sdrest.worker.pool import WorkerPool, recover_interrupted, scan_models

log = logging.getLogger("sdrest")


def run(settings: Settings) -> int:
    """Run the workers until SIGTERM or SIGINT; returns the exit code."""
    settings = settings.resolved()
    setup_logging(settings)
    make_private_dir(settings.data_dir)
    make_private_dir(settings.outputs_dir)
    store = open_store(settings.store_url, pool_size=settings.store_pool_size, wait_seconds=settings.store_wait_seconds)
    hashes = HashCache(settings.data_dir / "hashes.sqlite3")
    bus = EventBus(store)
    try:
        images = open_image_store(settings, store)
        library = ModelLibrary(settings.model_folders(), hashes, allow_symlinks=settings.allow_symlinks)
        pool = WorkerPool(settings, store, bus, library, images)
        recover_interrupted(store, images, settings, [s.worker_id for s in pool.supervisors])
        stopping = threading.Event()

        def _stop(signum: int, _frame: Any) -> None:
            log.info("stopping (signal %d)", signum)
            stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        threading.Thread(target=scan_models, args=(library,), name="sdrest-scan", daemon=True).start()
        pool.start()
        # This host's models folder is its own: downloads asked on an API node run here too.
        downloads = DownloadLane.for_settings(store, bus, library, settings)
        downloads.start()
        log.info(
            "sdrest worker %s on %s (outputs %s, models %s)",
            ", ".join(s.worker_id for s in pool.supervisors),
            redact_url(settings.store_url),
            settings.outputs_dir,
            settings.models_dir,
        )
        while not stopping.wait(1.0):
            pass
        downloads.stop()  # running downloads resume at the next start
        pool.stop()  # running jobs go back to the queue, in their place
        return 0
    finally:
        bus.close()
        store.close()
        hashes.close()
