"""Download one :class:`~sdrest.models.hub.remote.RemoteFile` into its folder, safely.

- The bytes go to a hidden partial file beside the target (``.NAME.partial``; the library scan
  skips hidden files). After a restart, even ``kill -9``, the next fetch continues it with a
  ``Range`` request (a server that answers 200 instead starts it over).
- The sha256 (the hub's, or the caller's, which wins) is checked when all bytes are there; a
  mismatch removes the partial file and names both hashes. Only then is the file renamed into
  place (``os.replace``: atomic on one file system).
- Before the first byte: the size cap (``max_download_bytes``) and the free space of the folder
  (against the stated size). A disk that fills anyway fails cleanly: the partial file is removed.
- An HTML page (a login wall, an error page) is refused. A dropped connection is retried with
  backoff (``retries`` times without progress), continuing where it stopped.
- Plain URLs: every hop (redirects re-checked) must be allowed by the download host policy;
  under ``public`` the connection goes only to addresses checked public (sdrest.hostpolicy), and
  only over https. The configured hub endpoints are trusted, with their CDN redirects.
- Tokens: the Hugging Face token only to the Hugging Face endpoint's host, the Civitai token only to
  Civitai's; never to a CDN or any other host, never logged or put in a message.
- ``should_stop`` is asked between chunks (and while waiting to retry): a caller in another thread
  cancels within a second. The partial file is kept then (:func:`partial_path` names it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore2
import httpx2

import sdrest
from sdrest.errors import SdrestError
from sdrest.hostpolicy import public_host_problem, resolve_host
from sdrest.models.hub.config import HubConfig
from sdrest.models.hub.errors import HubError
from sdrest.models.hub.remote import RemoteFile

__all__ = ["FetchedFile", "ProgressCallback", "StopCallback", "fetch", "partial_path"]

CHUNK = 1 << 20
MAX_REDIRECTS = 8
_REDIRECTS = (301, 302, 303, 307, 308)
#: Progress is reported at most this often (seconds), and once at the end.
PROGRESS_INTERVAL = 0.25

ProgressCallback = Callable[[int, "int | None", float], None]
StopCallback = Callable[[], bool]


@dataclass(frozen=True)
class FetchedFile:
    """The file in place: its path, size and sha256."""

    path: Path
    size: int
    sha256: str


def partial_path(target: Path) -> Path:
    """Where the bytes of ``target`` collect until they are verified."""
    return target.with_name(f".{target.name}.partial")


def _display(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    shown = urllib.parse.urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))
    return shown if len(shown) <= 200 else shown[:197] + "..."


class _PolicyBackend(httpcore2.SyncBackend):
    """Connects only to addresses the ``public`` policy allows (checked at connect time, for every
    host a redirect leads to; the address connected to is the one checked: no second lookup)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        try:
            addresses = resolve_host(host, port, timeout or self._timeout)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host} ({exc})") from None
        if not addresses:
            raise httpcore2.ConnectError(f"{host} has no address")
        problem = public_host_problem(host, addresses)
        if problem:
            raise _HostRefused(f"{host!r} is {problem}")
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)


class _HostRefused(SdrestError, httpcore2.ConnectError):
    pass


def _client(config: HubConfig, remote: RemoteFile) -> httpx2.Client:
    timeout = httpx2.Timeout(config.read_timeout, connect=config.connect_timeout)
    transport = httpx2.HTTPTransport(trust_env=False)
    if not remote.trusted and config.download_hosts == "public":
        # httpx2's transport takes no network backend; its pool is rebuilt with ours.
        transport._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(), network_backend=_PolicyBackend(config.connect_timeout)
        )
    headers = {"User-Agent": f"sdrest/{sdrest.__version__}", "Accept-Encoding": "identity"}
    return httpx2.Client(transport=transport, timeout=timeout, headers=headers, follow_redirects=False, trust_env=False)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _auth_header(url: str, remote: RemoteFile, config: HubConfig) -> dict[str, str]:
    """The token for ``url``, only when it is the token's own endpoint."""
    token, endpoint = {
        "hf": (config.hf_token, config.hf_endpoint),
        "civitai": (config.civitai_token, config.civitai_endpoint),
    }.get(remote.auth or "", (None, ""))
    if token and _origin(url) == _origin(endpoint):
        return {"Authorization": f"Bearer {token}"}
    return {}


def _check_hop(url: str, remote: RemoteFile, config: HubConfig) -> None:
    if remote.trusted:
        return
    if config.download_hosts == "off":
        raise HubError("host_not_allowed", "downloads from plain URLs are off on this server (--download-hosts)")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise HubError("host_not_allowed", f"{_display(url)} is not allowed: only http(s) URLs")
    if config.download_hosts == "public" and scheme != "https":
        raise HubError("host_not_allowed", f"{_display(url)} is not allowed: plain http:// needs --download-hosts any")


def _open(client: httpx2.Client, remote: RemoteFile, config: HubConfig, start: int) -> httpx2.Response:
    """The response to GET of the file from byte ``start`` on, after the redirects."""
    url = remote.url
    for _hop in range(MAX_REDIRECTS + 1):
        _check_hop(url, remote, config)
        headers = _auth_header(url, remote, config)
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            response = client.send(client.build_request("GET", url, headers=headers), stream=True)
        except httpx2.ConnectError as exc:
            if isinstance(exc.__cause__, _HostRefused) or isinstance(exc.__context__, _HostRefused):
                raise HubError("host_not_allowed", f"{_display(url)} is not allowed: {exc}") from None
            raise
        if response.status_code in _REDIRECTS:
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise HubError("bad_response", f"{_display(url)} redirects without a Location")
            url = urllib.parse.urljoin(url, location)
            continue
        return response
    raise HubError("bad_response", f"more than {MAX_REDIRECTS} redirects fetching {_display(remote.url)}")


def _status_error(response: httpx2.Response, remote: RemoteFile) -> HubError:
    status = response.status_code
    if status == 404:
        return HubError("not_found", f"{remote.source}: the file is not there (HTTP 404)")
    if status in (401, 403):
        setting = {"hf": "--hf-token or HF_TOKEN", "civitai": "--civitai-token"}.get(remote.auth or "")
        hint = f": set {setting}" if setting else ""
        return HubError("unauthorized", f"{remote.source}: access refused (HTTP {status}){hint}")
    return HubError("bad_response", f"{remote.source}: HTTP {status} from {_display(str(response.url))}")


def _check_room(folder: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise HubError(
            "disk_full", f"not enough room for {name} in {folder}: {needed} bytes still to download, {free} free"
        )


def _check_cap(size: int | None, config: HubConfig, name: str) -> None:
    cap = config.max_download_bytes
    if cap is not None and size is not None and size > cap:
        raise HubError("too_large", f"{name} is {size} bytes, over the download limit of {cap} (--max-download-gb)")


def _is_html(content_type: str, first: bytes) -> bool:
    if content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    head = first[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _hash_of(path: Path) -> tuple[Any, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest, size


def fetch(
    remote: RemoteFile,
    target: Path,
    *,
    config: HubConfig,
    expected_sha256: str | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    check: Callable[[Path], None] | None = None,
) -> FetchedFile:
    """Download ``remote`` to ``target`` (its folder must exist). ``check(partial)`` runs on the
    verified bytes before they are renamed into place (it raises :class:`HubError` to refuse them:
    the partial file is removed). :class:`HubError` for every failure."""
    target = Path(target)
    partial = partial_path(target)
    expected = (expected_sha256 or remote.sha256 or "").lower() or None
    _check_cap(remote.size, config, remote.name)
    have = partial.stat().st_size if partial.exists() else 0
    if remote.size is not None:
        _check_room(target.parent, max(0, remote.size - have), remote.name)
    digest, have = _hash_of(partial) if have else (hashlib.sha256(), 0)
    failures = 0
    total: int | None = remote.size
    reporter = _Reporter(on_progress)
    try:
        with _client(config, remote) as client:
            while True:
                _stop_if(should_stop)
                try:
                    done, total = _transfer(client, remote, config, partial, digest, have, reporter, should_stop)
                    break
                except _Progressed as progressed:
                    failures = 0 if progressed.done > have else failures + 1
                    have = progressed.done
                    if progressed.restart:
                        digest, have = hashlib.sha256(), 0
                    if failures > config.retries:
                        raise HubError(
                            "unreachable",
                            f"{remote.source}: the connection kept failing ({progressed.reason}); "
                            f"{have} bytes kept for a resume",
                        ) from None
                    _sleep(
                        min(config.max_backoff_seconds, config.backoff_seconds * 2 ** max(0, failures - 1)), should_stop
                    )
        reporter.report(done, total, final=True)
    finally:
        reporter.close()
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        partial.unlink(missing_ok=True)
        raise HubError("hash_mismatch", f"sha256 mismatch for {remote.name}: expected {expected}, got {actual}")
    if check is not None:
        try:
            check(partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, target)
    return FetchedFile(target, done, actual)


class _Progressed(SdrestError):
    """A try that failed after ``done`` bytes were in the partial file (retry from there)."""

    def __init__(self, done: int, reason: str, restart: bool = False) -> None:
        super().__init__(reason)
        self.done, self.reason, self.restart = done, reason, restart


class _Reporter:
    """Progress at most every :data:`PROGRESS_INTERVAL`. A report the interval holds back is sent
    when the interval ends (one timer at a time), so a transfer that stalls, a hub that stops
    sending mid-file, still shows every byte it has rather than those of the last report."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = 0.0
        self._window: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self._pending: tuple[int, int | None] | None = None
        self._timer: threading.Timer | None = None

    def report(self, done: int, total: int | None, final: bool = False) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._pending = (done, total)
            wait = PROGRESS_INTERVAL - (time.monotonic() - self._last)
            if final or wait <= 0:
                self._cancel()
                self._send()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        """No held-back report after this (the transfer ended, or failed)."""
        with self._lock:
            self._cancel()
            self._pending = None

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is not None:
                self._send()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self) -> None:
        assert self._callback is not None and self._pending is not None
        done, total = self._pending
        self._pending = None
        now = time.monotonic()
        start = self._window or (now, done)
        elapsed = now - start[0]
        speed = (done - start[1]) / elapsed if elapsed > 0 else 0.0
        self._window = (now, done) if elapsed > 5 else start
        self._last = now
        self._callback(done, total, speed)


def _stop_if(should_stop: StopCallback | None) -> None:
    if should_stop is not None and should_stop():
        raise HubError("cancelled", "the download was cancelled")


def _sleep(seconds: float, should_stop: StopCallback | None) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _stop_if(should_stop)
        time.sleep(min(0.2, left))


def _transfer(
    client: httpx2.Client,
    remote: RemoteFile,
    config: HubConfig,
    partial: Path,
    digest: Any,
    have: int,
    reporter: _Reporter,
    should_stop: StopCallback | None,
) -> tuple[int, int | None]:
    """One try: the bytes from ``have`` on appended to ``partial``. Returns (size, total)."""
    try:
        response = _open(client, remote, config, have)
    except httpx2.TransportError as exc:
        raise _Progressed(have, type(exc).__name__) from None
    try:
        if have and response.status_code == 416:
            partial.unlink(missing_ok=True)  # the partial file is not a prefix of this file
            raise _Progressed(0, "HTTP 416", restart=True)
        if response.status_code >= 500 or response.status_code == 429:  # a busy or failing hub: retried
            raise _Progressed(have, f"HTTP {response.status_code}")
        if response.status_code not in (200, 206):
            raise _status_error(response, remote)
        length = response.headers.get("Content-Length")
        body_size = int(length) if length is not None and length.isdigit() else None
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {have}-"):
                partial.unlink(missing_ok=True)
                raise _Progressed(0, "a range answer from the wrong offset", restart=True)
            total_text = content_range.rsplit("/", 1)[-1]
            total = int(total_text) if total_text.isdigit() else None
        else:
            if have:  # the server ignored Range: start over
                partial.unlink(missing_ok=True)
                raise _Progressed(0, "the server ignored the Range request", restart=True)
            total = body_size
        _check_cap(total, config, remote.name)
        if total is not None:
            _check_room(partial.parent, max(0, total - have), remote.name)
        stream = response.iter_bytes()  # as they arrive: a dropped connection loses no buffered bytes
        try:
            first = next(stream, b"")
        except httpx2.HTTPError as exc:
            raise _Progressed(have, type(exc).__name__) from None
        if have == 0 and _is_html(response.headers.get("Content-Type", ""), first):
            raise HubError("not_a_model", f"{remote.source}: the server sent an HTML page, not a model file")
        done = have
        try:
            with open(partial, "ab") as out:
                chunk = first
                while True:
                    if chunk:
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        _check_cap(done, config, remote.name)
                        reporter.report(done, total)
                    _stop_if(should_stop)
                    try:
                        chunk = next(stream, b"")
                    except httpx2.HTTPError as exc:
                        out.flush()
                        raise _Progressed(done, type(exc).__name__) from None
                    if not chunk:
                        break
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                partial.unlink(missing_ok=True)
                raise HubError("disk_full", f"the disk filled up while downloading {remote.name}") from None
            raise HubError("bad_response", f"cannot write {partial.name}: {exc.strerror}") from None
        except HubError as exc:
            if exc.code == "too_large":
                partial.unlink(missing_ok=True)
            raise
        if total is not None and done < total:
            raise _Progressed(done, "the connection closed early")
        if total is not None and done > total:
            partial.unlink(missing_ok=True)
            raise HubError("bad_response", f"{remote.source}: more bytes than the server announced")
        return done, total
    finally:
        response.close()
