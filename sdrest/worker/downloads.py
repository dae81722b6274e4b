"""The download lane: the server's threads that run model downloads, beside the generation worker.

Downloads write to this host's models folder, so they run in the server process (threads: the
work is network and disk, and the generation process must never wait for it), a small pool of
``--download-concurrency`` threads that claim this host's queued rows from the job store
(durably: a claimed row is ``downloading`` in the store before a byte moves). Each file goes
through :func:`sdrest.models.hub.install`, the one code path the CLI uses too; the library is
rescanned as each file lands, so the new model is listed at once.

A stop (even ``kill -9``) leaves the row ``downloading`` and the partial file in its folder; the
next start queues the row again (:meth:`DownloadLane.start`) and the transfer resumes from the
partial file with a Range request. A cancel (the store's row no longer runs) stops the transfer
and removes the partial file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from sdrest.errors import StoreUnavailable
from sdrest.jobs.bus import EventBus
from sdrest.jobs.downloads import Download, DownloadError, DownloadFile, DownloadStatus, DownloadStore
from sdrest.models.hub import HubConfig, HubError, parse_source
from sdrest.models.hub.install import install, safe_name, target_for
from sdrest.models.hub.remote import RemoteFile, resolve
from sdrest.models.hub.transfer import partial_path
from sdrest.models.recipes import load_recipes, write_preset
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders, ModelType
from sdrest.settings import Settings

log = logging.getLogger("sdrest.downloads")

#: Seconds between progress updates of one download (store row and ephemeral event).
PROGRESS_INTERVAL = 0.5
#: Seconds between looks at the store for a cancel asked elsewhere, while a transfer runs.
CANCEL_CHECK_INTERVAL = 1.0
#: Seconds an idle lane thread sleeps before it looks at the store again (a POST wakes it at once).
IDLE_POLL = 2.0


class DownloadLane:
    """``concurrency`` threads running ``host``'s downloads; :meth:`start` and :meth:`stop` with the app."""

    @classmethod
    def for_settings(
        cls, store: DownloadStore, bus: EventBus, library: ModelLibrary, settings: Settings
    ) -> DownloadLane:
        """The lane of a server or worker host: its hub settings, its own host name, its concurrency."""
        return cls(
            store,
            bus,
            library,
            HubConfig.from_settings(settings),
            host=settings.worker_name,
            concurrency=settings.download_concurrency,
            recipes=settings.recipes,
        )

    def __init__(
        self,
        store: DownloadStore,
        bus: EventBus,
        library: ModelLibrary,
        config: HubConfig,
        *,
        host: str,
        concurrency: int = 2,
        recipes: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.bus = bus
        self.library = library
        self.config = config
        self.recipes = recipes  # --recipes: the operator's catalogue beside the shipped one
        self.host = host
        self.concurrency = concurrency
        self._clock = clock
        self._stopping = threading.Event()
        self._work = threading.Condition()
        self._pending_wakeups = 0
        self._threads: list[threading.Thread] = []
        #: Downloads cancelled through this server's API: their transfers stop at once.
        self._cancelled_ids: set[str] = set()

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> None:
        """Queue again what a stop cut off, then start the threads."""
        for download in self.store.recover_downloads(self.host):
            log.info("download %s: interrupted by a stop, resuming", download.id)
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"sdrest-download-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads; running downloads stay ``downloading`` for the next start to resume."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def wake(self) -> None:
        """A download was queued: an idle thread claims it now rather than at its next poll."""
        with self._work:
            self._pending_wakeups += 1
            self._work.notify_all()

    def cancelled(self, download: Download) -> None:
        """``download`` was cancelled: a running transfer of it stops within a second and removes
        its partial files; those of a row that was only queued (a resume waiting after a
        restart) are removed here."""
        row = download.host(self.host)
        if row is None:
            return
        if row.status is DownloadStatus.QUEUED:
            remove_partials(row.files, self.library.folders)
        elif not row.status.finished:
            self._cancelled_ids.add(download.id)

    # -- the threads ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                download = self.store.claim_download(self.host)
                if download is not None:
                    self._run(download)
                    continue
            except StoreUnavailable:  # logged once by the store; the row resumes after a restart
                pass
            except Exception:  # a bug: this lane thread goes on with the next download
                log.exception("download lane: claiming or finishing a download failed")
            with self._work:
                if self._pending_wakeups == 0:
                    self._work.wait(IDLE_POLL)
                self._pending_wakeups = 0

    def _run(self, download: Download) -> None:
        run = _Run(self, download)
        failure: DownloadError | None = None
        try:
            run.execute()
        except HubError as exc:
            failure = DownloadError(exc.code, exc.message)
        except Exception as exc:  # a bug or the disk: the download fails, the lane goes on
            log.exception("download %s failed", download.id)
            failure = DownloadError("internal", f"unexpected error: {exc}")
        finally:
            run.end()
        # A cancel or a stop shows in the transfer as an error: they decide before the error does.
        self._cancelled_ids.discard(download.id)
        if run.cancelled:
            remove_partials(run.files, self.library.folders)
            log.info("download %s: cancelled", download.id)
        elif failure is None:
            self._finish(run, DownloadStatus.COMPLETED, None)
            log.info("download %s completed: %s", download.id, ", ".join(f.path or f.name for f in run.files))
        elif self._stopping.is_set():
            log.info("download %s: stopped with the server; the next start resumes it", download.id)
        else:
            log.warning("download %s failed: %s", download.id, failure.message)
            self._finish(run, DownloadStatus.FAILED, failure)

    def _finish(self, run: _Run, status: DownloadStatus, error: DownloadError | None) -> None:
        self.store.finish_download(run.download.id, self.host, status, files=run.files, error=error)


class _Run:
    """One claimed download row, run to its end."""

    def __init__(self, lane: DownloadLane, download: Download) -> None:
        self.lane = lane
        self.download = download
        row = download.host(lane.host)
        self.files: list[DownloadFile] = list(row.files) if row is not None else []
        self._last_report = 0.0
        self._last_check = lane._clock()
        self.cancelled = False
        self._ended = False
        self._bytes_per_second = 0.0
        self._status = DownloadStatus.DOWNLOADING
        self._report_lock = threading.RLock()
        self._timer: threading.Timer | None = None

    def execute(self) -> list[DownloadFile]:
        request = self.download.request
        planned: list[tuple[RemoteFile, str | None, str | None, str | None]]  # file, type, sha256, name
        if request.get("recipe") is not None:
            recipe = load_recipes(self.lane.recipes)[request["recipe"]]
            planned = [
                (remote, item.type.api_name, item.sha256, item.name)
                for item in recipe.files
                for remote in resolve(parse_source(item.source), self.lane.config)
            ]
        else:
            planned = [
                (remote, request.get("type"), request.get("sha256"), request.get("name"))
                for remote in resolve(parse_source(request["source"]), self.lane.config)
            ]
        self.files = [
            self._planned_file(remote, type_name, sha256, name) for remote, type_name, sha256, name in planned
        ]
        self._report(force=True)
        for index, (remote, type_name, sha256, name) in enumerate(planned):
            self._install(index, remote, type_name, sha256, name)
        if request.get("recipe") is not None:
            write_preset(load_recipes(self.lane.recipes)[request["recipe"]], self.lane.library.folders)
            self.lane.library.scan()
        return self.files

    def _planned_file(
        self, remote: RemoteFile, type_name: str | None, sha256: str | None, name: str | None
    ) -> DownloadFile:
        model_type = type_name or (remote.type_hint.api_name if remote.type_hint is not None else None)
        return DownloadFile(
            source=remote.source,
            name=name or remote.name,
            type=model_type,
            size=remote.size,
            sha256=sha256 or remote.sha256,
        )

    def _install(
        self, index: int, remote: RemoteFile, type_name: str | None, sha256: str | None, name: str | None
    ) -> None:
        def on_progress(done: int, total: int | None, bytes_per_second: float) -> None:
            self.files[index] = replace(self.files[index], bytes_done=done, size=total or self.files[index].size)
            # Every byte in: the hash and the header are checked before the file moves into place.
            self._status = (
                DownloadStatus.VERIFYING if total is not None and done >= total else DownloadStatus.DOWNLOADING
            )
            self._report(bytes_per_second=bytes_per_second)

        installed = install(
            remote,
            self.lane.library.folders,
            model_type=ModelType.from_name(type_name) if type_name else None,
            sha256=sha256,
            name=name,
            config=self.lane.config,
            on_progress=on_progress,
            should_stop=self._should_stop,
        )
        self._check_stop()
        self.files[index] = replace(
            self.files[index],
            type=installed.model_type.api_name,
            size=installed.size,
            sha256=installed.sha256,
            bytes_done=installed.size,
            path=str(installed.path),
            skipped_existing=installed.skipped_existing,
        )
        self._status = DownloadStatus.DOWNLOADING
        self.lane.library.scan()  # the new model is listed at once
        self._report(force=True)

    def _should_stop(self) -> bool:
        if self.download.id in self.lane._cancelled_ids:
            self.cancelled = True
        now = self.lane._clock()
        if not self.cancelled and now - self._last_check >= CANCEL_CHECK_INTERVAL:
            # A cancel asked on another node (a cluster's API node) shows only in the store.
            self._last_check = now
            try:
                current = self.lane.store.get_download(self.download.id)
            except StoreUnavailable:  # the database is away for now: the transfer goes on, asks again later
                current = self.download
            row = None if current is None else current.host(self.lane.host)
            self.cancelled = row is None or row.status is DownloadStatus.CANCELLED
        return self.cancelled or self.lane._stopping.is_set()

    def _check_stop(self) -> None:
        if self._should_stop():
            raise HubError("cancelled", "the download was stopped")

    def _report(self, *, bytes_per_second: float = 0.0, force: bool = False) -> None:
        """Progress to the store and the event streams, at most every PROGRESS_INTERVAL; the last
        one of a burst still goes out when the interval is over (a stalled hub leaves it visible)."""
        with self._report_lock:
            self._bytes_per_second = bytes_per_second
            wait = PROGRESS_INTERVAL - (self.lane._clock() - self._last_report)
            if not force and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._flush()

    def _flush(self) -> None:
        with self._report_lock:
            self._timer = None
            self._last_report = self.lane._clock()
            files = list(self.files)
            bytes_per_second = self._bytes_per_second
            if self._ended:
                return
            sizes = [item.size for item in files]
            running = self.lane.store.download_progress(
                self.download.id,
                self.lane.host,
                files=files,
                bytes_done=sum(item.bytes_done for item in files),
                bytes_total=None if None in sizes else sum(size for size in sizes if size is not None),
                bytes_per_second=bytes_per_second,
                status=self._status,
            )
        if not running:
            self.cancelled = True
            return
        view = self.lane.store.get_download(self.download.id)
        if view is not None:
            self.lane.bus.emit("download.progress", owner=view.owner, data=view.to_dict())

    def end(self) -> None:
        """No more progress reports (the run is over)."""
        with self._report_lock:
            self._ended = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def remove_partials(files: Iterable[DownloadFile], folders: ModelFolders) -> None:
    """Remove the partial files of a download's files that have not landed (those that did stay:
    they are models). Where :func:`sdrest.models.hub.install.install` puts them: beside the
    target in the type's folder, or, with no type known yet, as a hidden staging file in the
    models folder."""
    for item in files:
        if item.path is not None:
            continue
        try:
            if item.type is not None:
                target = target_for(item.name, ModelType.from_name(item.type), folders)
            else:
                target = folders.models_dir.resolve() / f".{safe_name(item.name)}.download"
        except (HubError, ValueError):  # a name or type install refused: it wrote nothing
            continue
        partial_path(target).unlink(missing_ok=True)
