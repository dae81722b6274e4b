"""The SSRF-safe fetcher for image URLs in requests (``init_image: "https://..."``).

It uses only the standard library. Under the ``public`` policy every address the host resolves
to must be public (no loopback, private, link-local, multicast, reserved or otherwise non-global
address), and the connection goes to an address that was checked, never to a second lookup (DNS
rebinding). Redirects (at most :data:`MAX_REDIRECTS`) are re-checked at each hop; ``max_bytes``
is enforced while streaming, whatever ``Content-Length`` says, and ``url_timeout`` bounds the
whole fetch, redirects included (one deadline for all the URLs of one HTTP request). Environment
proxies are not used. Errors are :class:`~sdrest.api.image_input.ImageInputError`, as for every
other way of giving an image.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.parse

import sdrest
from sdrest.api.image_input import READ_CHUNK, ImageInputError, ImageLimits, check_declared, check_size
from sdrest.hostpolicy import public_host_problem
from sdrest.hostpolicy import resolve_host as _resolve  # tests replace url_fetch._resolve

MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)


def _display_url(url: str) -> str:
    """The URL for messages: credentials removed, at most 200 characters."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)[-1]
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url if len(url) <= 200 else url[:197] + "..."


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to exactly ``address`` (no name lookup). Tests replace this."""
    return socket.create_connection((address, port), timeout=timeout)


def _connect_any(addresses: list[str], port: int, deadline: float) -> socket.socket:
    error: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("connect timed out")
        try:
            return _open_socket(address, port, remaining)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to addresses resolved (and checked) beforehand."""

    def __init__(self, host: str, port: int, addresses: list[str], deadline: float) -> None:
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self._addresses = addresses
        self._deadline = deadline
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        self.sock = self.raw_sock = _connect_any(self._addresses, self.port, self._deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to pre-checked addresses; the certificate is verified against the URL's host."""

    def __init__(self, host: str, port: int, addresses: list[str], deadline: float) -> None:
        context = ssl.create_default_context()
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()), context=context)
        self._addresses = addresses
        self._deadline = deadline
        self._tls_context = context
        self.raw_sock: socket.socket | None = None

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self._deadline)
        self.raw_sock = sock
        sock.settimeout(max(0.001, self._deadline - time.monotonic()))
        self.sock = self.raw_sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


def _request_deadline(timeout: float) -> float:
    """One deadline for every URL of one HTTP request (the first fetch starts the clock), so a
    request naming a dozen slow URLs still takes ``url_timeout`` at most, not a dozen times it."""
    own = time.monotonic() + timeout
    from flask import g, has_request_context

    if not has_request_context():
        return own
    return float(g.setdefault("sdrest_url_deadline", own))


def fetch_url(url: str, field: str, limits: ImageLimits) -> tuple[bytes, str | None]:
    if limits.url_policy == "off":
        raise ImageInputError(field, "url_not_allowed", "image URLs are disabled on this server", 400)
    deadline = _request_deadline(limits.url_timeout)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        outcome = _fetch_once(current, field, limits, deadline)
        if isinstance(outcome, tuple):
            return outcome
        current = urllib.parse.urljoin(current, outcome)
    raise ImageInputError(
        field, "url_fetch_failed", f"too many redirects (more than {MAX_REDIRECTS}) fetching {_display_url(url)}", 422
    )


def _fetch_once(url: str, field: str, limits: ImageLimits, deadline: float) -> tuple[bytes, str | None] | str:
    """GET ``url``: ``(body, content_type)``, or the ``Location`` of a redirect."""
    shown = _display_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ImageInputError(field, "invalid_url", f"malformed URL {shown}: {exc}", 400) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ImageInputError(
            field, "url_not_allowed", f"unsupported URL scheme {scheme!r} in {shown}; only http and https", 400
        )
    host = parts.hostname
    if not host:
        raise ImageInputError(field, "invalid_url", f"URL has no host: {shown}", 400)
    if parts.username is not None or parts.password is not None:
        raise ImageInputError(field, "invalid_url", "credentials in image URLs are not supported", 400)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ImageInputError(field, "invalid_url", f"invalid host name in {shown}", 400) from None
    port = port or (443 if scheme == "https" else 80)

    def failed(reason: str) -> ImageInputError:
        return ImageInputError(field, "url_fetch_failed", f"could not fetch {shown}: {reason}", 422)

    def timed_out() -> ImageInputError:
        return failed(f"timed out after {limits.url_timeout:g} s")

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise timed_out()

    def not_public(what: str) -> ImageInputError:
        return ImageInputError(field, "url_not_allowed", f"{shown} is not allowed: {host!r} is {what}", 400)

    try:
        addresses = _resolve(host, port, remaining)
    except TimeoutError:
        raise timed_out() from None
    except OSError as exc:
        if limits.url_policy == "public":
            # The same answer as for a name of an internal address: "cannot resolve" for one and
            # "not public" for the other would tell a client which internal names exist.
            raise not_public("not a public host") from None
        raise failed(f"cannot resolve host {host!r} ({exc})") from None
    if not addresses:
        if limits.url_policy == "public":
            raise not_public("not a public host")
        raise failed(f"host {host!r} has no address")
    if limits.url_policy == "public" and (what := public_host_problem(host, addresses)):
        raise not_public(what)

    connection_type = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(host, port, addresses, deadline)
    aborted = threading.Event()
    response: http.client.HTTPResponse | None = None

    def abort() -> None:  # the whole-fetch deadline: wake any blocked read
        aborted.set()
        sock = connection.raw_sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request(
            "GET",
            target,
            headers={
                "User-Agent": f"sdrest/{sdrest.__version__}",
                "Accept": "image/png,image/jpeg,image/webp,image/bmp,image/gif,image/*;q=0.8",
                "Accept-Encoding": "identity",
            },
        )
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise failed(f"HTTP {response.status} redirect without a Location")
            return location
        if not 200 <= response.status < 300:
            raise failed(f"HTTP {response.status} {response.reason}".rstrip())
        content_type = response.getheader("Content-Type")
        check_declared(content_type, field, f"the Content-Type of {shown}")
        declared_length = response.getheader("Content-Length")
        if declared_length and declared_length.strip().isdigit():
            check_size(int(declared_length), field, limits)
        chunks: list[bytes] = []
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or aborted.is_set():
                raise timed_out()
            if connection.raw_sock is not None:
                connection.raw_sock.settimeout(remaining)
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            check_size(total, field, limits)
        if aborted.is_set():
            raise timed_out()
        return b"".join(chunks), content_type
    except ImageInputError:
        raise
    except (http.client.InvalidURL, UnicodeError) as exc:
        raise ImageInputError(field, "invalid_url", f"malformed URL {shown}: {exc}", 400) from None
    except TimeoutError:
        raise timed_out() from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if aborted.is_set():
            raise timed_out() from None
        raise failed(str(exc) or type(exc).__name__) from None
    finally:
        watchdog.cancel()
        if response is not None:
            response.close()
        connection.close()
