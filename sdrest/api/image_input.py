"""Images in requests: base64, data URLs, multipart uploads and http(s) URLs.

:func:`decode_image` turns whatever a request gave for an image field (``init_image``,
``mask_image``, ``control_image``, ``ref_images[1]``, ...) into a fully loaded Pillow image, or
raises :class:`ImageInputError` carrying the field, a machine-readable ``code`` and the HTTP
``status`` to answer with:

=========================  ======  ==========================================================
code                       status  when
=========================  ======  ==========================================================
``invalid_image``          400     not a string/upload at all, or empty
``invalid_base64``         400     the string is not valid base64 (nor a URL / data URL)
``invalid_url``            400     a malformed http(s) URL (no host, bad port, credentials)
``url_not_allowed``        400     URLs are off, a scheme other than http/https, or (policy
                                   ``public``) a host resolving to a non-public address
``image_too_large``        413     more than ``max_bytes`` bytes or ``max_pixels`` pixels
                                   (decompression bombs included)
``unsupported_media_type`` 415     a declared media type that is not a supported image
                                   (``data:text/plain``, ``Content-Type: text/html``,
                                   ``image/tiff``)
``url_fetch_failed``       422     connection error, HTTP error status, timeout, too many
                                   redirects
``invalid_image``          422     the bytes are not a PNG/JPEG/WebP/BMP/GIF Pillow can
                                   decode, or the file is truncated or corrupt
=========================  ======  ==========================================================

URL fetching uses only the standard library. Under the ``public`` policy every address the
host resolves to must be public (no loopback, private, link-local, multicast, reserved or
otherwise non-global address), and the connection goes to an address that was checked, never
to a second lookup (DNS rebinding). Redirects (at most :data:`MAX_REDIRECTS`) are re-checked at
each hop; ``max_bytes`` is enforced while streaming, whatever ``Content-Length`` says, and
``url_timeout`` bounds the whole fetch, redirects included. Environment proxies are not used.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

import sdrest
from sdrest.errors import SdrestError

if TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage

__all__ = ["ALLOWED_FORMATS", "MAX_REDIRECTS", "ImageInputError", "ImageLimits", "decode_image", "fit_to"]

#: Pillow formats accepted. Pillow only tries these decoders (no EPS/Ghostscript, no exotic
#: parsers on untrusted bytes). MPO is how Pillow reports some camera JPEGs.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF")
MAX_REDIRECTS = 3
URL_POLICIES = ("off", "public", "any")

_SUPPORTED_MEDIA_TYPES = frozenset({
    "image/png", "image/apng", "image/x-png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp",
    "image/bmp", "image/x-bmp", "image/x-ms-bmp", "image/gif",
})
_GENERIC_MEDIA_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class ImageInputError(SdrestError, ValueError):
    """A request image that can't be used; ``str()`` is ``"<field>: <message>"``."""

    def __init__(self, field: str, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.status = status
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"code", "field", "message"}``."""
        return {"code": self.code, "field": self.field, "message": str(self)}


@dataclass
class ImageLimits:
    """Limits on request images.

    ``url_policy``: ``"off"`` refuses every URL; ``"public"`` (default) allows http(s) URLs
    whose host resolves only to public addresses; ``"any"`` allows every http(s) URL (trusted
    networks, tests). ``max_pixels`` above Pillow's own ``Image.MAX_IMAGE_PIXELS`` (about 89 M)
    also needs that raised: Pillow refuses images over twice its limit before sdrest sees them.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    url_timeout: float = 10.0
    url_policy: str = "public"

    def __post_init__(self) -> None:
        if self.url_policy not in URL_POLICIES:
            raise ValueError(f"url_policy: must be one of {', '.join(URL_POLICIES)}, got {self.url_policy!r}")
        if not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be a positive integer, got {self.max_bytes!r}")
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise ValueError(f"max_pixels: must be a positive integer, got {self.max_pixels!r}")
        if not self.url_timeout > 0:
            raise ValueError(f"url_timeout: must be positive, got {self.url_timeout!r}")


# --------------------------------------------------------------------------------------------
# public API


def decode_image(value: Any, field: str, limits: ImageLimits | None = None) -> Image.Image:
    """Decode a request image into a loaded, EXIF-oriented Pillow image.

    ``value``: a base64 string (line breaks and URL-safe alphabet tolerated, padding optional),
    a ``data:image/...;base64,...`` URL, an ``http(s)://`` URL, a werkzeug ``FileStorage``
    (anything with ``.stream``), or raw ``bytes``. The image keeps its mode (``P`` for GIFs,
    ``L`` for grey masks, ...); for GIFs only the first frame is returned.
    """
    limits = limits or ImageLimits()
    declared: str | None = None
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _check_size(len(data), field, limits)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ImageInputError(field, "invalid_image", "is empty", 400)
        lowered = text[:16].lower()
        if lowered.startswith("data:"):
            data, declared = _decode_data_url(text, field, limits)
        elif lowered.startswith(("http://", "https://")):
            data, declared = _fetch_url(text, field, limits)
        elif _SCHEME_RE.match(text[:64]):
            scheme = text.split(":", 1)[0].lower()
            raise ImageInputError(field, "url_not_allowed",
                                  f"unsupported URL scheme {scheme!r}; only http and https URLs are fetched", 400)
        else:
            data = _decode_base64(text, field, limits)
    elif hasattr(value, "stream"):
        data, declared = _read_upload(value, field, limits)
    else:
        raise ImageInputError(field, "invalid_image",
                              f"expected a base64 string, data URL, http(s) URL or file upload, "
                              f"got {type(value).__name__}", 400)
    return _open_image(data, field, limits, declared)


def fit_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` resized to exactly ``width`` x ``height`` (Lanczos) when its size differs.

    The aspect ratio is not kept: the image is stretched to the requested size, as the native
    library does with init, mask and control images. Returns ``image`` itself when it already
    has that size.
    """
    if (isinstance(width, bool) or isinstance(height, bool) or not isinstance(width, int)
            or not isinstance(height, int) or width < 1 or height < 1):
        raise ValueError(f"width/height: must be positive integers, got {width!r}x{height!r}")
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------------------------
# sources


def _check_size(size: int, field: str, limits: ImageLimits) -> None:
    if size > limits.max_bytes:
        raise ImageInputError(field, "image_too_large",
                              f"image is larger than the {_human(limits.max_bytes)} limit", 413)


def _human(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _check_declared(declared: str | None, field: str, what: str) -> None:
    """Refuse a declared media type that is clearly not an image (``text/html``, ...)."""
    media = _media_type(declared)
    if media in _GENERIC_MEDIA_TYPES or media.startswith("image/"):
        return
    raise ImageInputError(field, "unsupported_media_type",
                          f"{what} is {media!r}, not an image (PNG, JPEG, WebP, BMP or GIF)", 415)


def _decode_base64(text: str, field: str, limits: ImageLimits) -> bytes:
    compact = "".join(text.split())
    _check_size(len(compact) * 3 // 4 - 2, field, limits)  # before decoding: no huge allocation
    padded = compact + "=" * (-len(compact) % 4)
    try:
        # altchars maps the URL-safe "-_" onto "+/": both alphabets decode
        data = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError(field, "invalid_base64",
                              "is not valid base64 (nor a data: or http(s) URL)", 400) from None
    if not data:
        raise ImageInputError(field, "invalid_image", "is empty", 400)
    _check_size(len(data), field, limits)
    return data


def _decode_data_url(text: str, field: str, limits: ImageLimits) -> tuple[bytes, str]:
    header, sep, payload = text.partition(",")
    if not sep:
        raise ImageInputError(field, "invalid_base64", "malformed data URL (no ',')", 400)
    parts = [p.strip() for p in header[len("data:"):].split(";")]
    media = parts[0].lower()
    _check_declared(media, field, "the data URL's media type")
    if any(p.lower() == "base64" for p in parts[1:]):
        return _decode_base64(payload, field, limits), media
    data = urllib.parse.unquote_to_bytes(payload)
    _check_size(len(data), field, limits)
    return data, media


def _read_upload(upload: FileStorage, field: str, limits: ImageLimits) -> tuple[bytes, str | None]:
    declared = getattr(upload, "mimetype", None) or getattr(upload, "content_type", None)
    _check_declared(declared, field, "the upload's content type")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = upload.stream.read(min(_CHUNK, limits.max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limits.max_bytes:
            _check_size(total, field, limits)
    if not total:
        raise ImageInputError(field, "invalid_image", "the uploaded file is empty", 400)
    return b"".join(chunks), declared


def _decoders() -> list[str]:
    """The allowed formats this Pillow build can decode (all plugins registered first)."""
    Image.init()
    return [name for name in ALLOWED_FORMATS if name in Image.OPEN]


def _open_image(data: bytes, field: str, limits: ImageLimits, declared: str | None) -> Image.Image:
    media = _media_type(declared)
    unsupported_type = media.startswith("image/") and media not in _SUPPORTED_MEDIA_TYPES
    stream = io.BytesIO(data)
    try:
        image = Image.open(stream, formats=_decoders())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(field, "image_too_large", f"image has too many pixels ({exc})", 413) from None
    except UnidentifiedImageError:
        if unsupported_type:
            raise ImageInputError(field, "unsupported_media_type",
                                  f"{media} is not supported; use PNG, JPEG, WebP, BMP or GIF", 415) from None
        raise ImageInputError(field, "invalid_image",
                              "is not a PNG, JPEG, WebP, BMP or GIF image", 422) from None
    except Exception as exc:  # noqa: BLE001 - malformed headers raise all sorts of things
        raise ImageInputError(field, "invalid_image", f"could not read the image: {exc}", 422) from None
    try:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageInputError(field, "invalid_image", f"image has no pixels ({width}x{height})", 422)
        if width * height > limits.max_pixels:
            raise ImageInputError(field, "image_too_large",
                                  f"image is {width}x{height} = {width * height} pixels, more than the "
                                  f"{limits.max_pixels} allowed", 413)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageInputError(field, "image_too_large", f"image has too many pixels ({exc})", 413) from None
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt data: OSError, SyntaxError, ...
            raise ImageInputError(field, "invalid_image",
                                  f"the {image.format} image is truncated or corrupt ({exc})", 422) from None
        try:
            result = ImageOps.exif_transpose(image)  # a copy, detached from the stream
        except Exception:  # noqa: BLE001 - a broken EXIF block shouldn't reject the pixels
            result = image.copy()
        if result is None or result is image:
            result = image.copy()
        return result
    finally:
        image.close()


# --------------------------------------------------------------------------------------------
# URL fetching


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


def _address_problem(address: str) -> str | None:
    """Why ``address`` is not a public address (``None`` when it is)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "an unparseable address"
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 well-known prefix
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    for candidate in candidates:
        for name, flag in (("loopback", candidate.is_loopback), ("private", candidate.is_private),
                           ("link-local", candidate.is_link_local), ("multicast", candidate.is_multicast),
                           ("reserved", candidate.is_reserved), ("unspecified", candidate.is_unspecified)):
            if flag:
                return f"a {name} address"
        if not candidate.is_global:
            return "not a public address"
    return None


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to (IP literals as they are), within ``timeout`` seconds."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return [host]
    except ValueError:
        pass
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result["addresses"] = list(dict.fromkeys(str(info[4][0]) for info in infos))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            result["error"] = exc

    worker = threading.Thread(target=lookup, name="sdrest-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} timed out")
    if "error" in result:
        raise result["error"]
    return result["addresses"]


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


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _request_deadline(timeout: float) -> float:
    """One deadline for every URL of one HTTP request (the first fetch starts the clock), so a
    request naming a dozen slow URLs still takes ``url_timeout`` at most, not a dozen times it."""
    own = time.monotonic() + timeout
    from flask import g, has_request_context

    if not has_request_context():
        return own
    return float(g.setdefault("sdrest_url_deadline", own))


def _fetch_url(url: str, field: str, limits: ImageLimits) -> tuple[bytes, str | None]:
    if limits.url_policy == "off":
        raise ImageInputError(field, "url_not_allowed", "image URLs are disabled on this server", 400)
    deadline = _request_deadline(limits.url_timeout)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        outcome = _fetch_once(current, field, limits, deadline)
        if isinstance(outcome, tuple):
            return outcome
        current = urllib.parse.urljoin(current, outcome)
    raise ImageInputError(field, "url_fetch_failed",
                          f"too many redirects (more than {MAX_REDIRECTS}) fetching {_display_url(url)}", 422)


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
        raise ImageInputError(field, "url_not_allowed",
                              f"unsupported URL scheme {scheme!r} in {shown}; only http and https", 400)
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
    try:
        addresses = _resolve(host, port, remaining)
    except TimeoutError:
        raise timed_out() from None
    except OSError as exc:
        raise failed(f"cannot resolve host {host!r} ({exc})") from None
    if not addresses:
        raise failed(f"host {host!r} has no address")
    if limits.url_policy == "public":
        for address in addresses:
            problem = _address_problem(address)
            if problem:
                # Never echo what an internal name resolves to: that is a free DNS probe.
                what = problem if _is_ip_literal(host) else "not a public host"
                raise ImageInputError(field, "url_not_allowed", f"{shown} is not allowed: {host!r} is {what}", 400)

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
        connection.request("GET", target, headers={
            "User-Agent": f"sdrest/{sdrest.__version__}",
            "Accept": "image/png,image/jpeg,image/webp,image/bmp,image/gif,image/*;q=0.8",
            "Accept-Encoding": "identity",
        })
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise failed(f"HTTP {response.status} redirect without a Location")
            return location
        if not 200 <= response.status < 300:
            raise failed(f"HTTP {response.status} {response.reason}".rstrip())
        content_type = response.getheader("Content-Type")
        _check_declared(content_type, field, f"the Content-Type of {shown}")
        declared_length = response.getheader("Content-Length")
        if declared_length and declared_length.strip().isdigit():
            _check_size(int(declared_length), field, limits)
        chunks: list[bytes] = []
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or aborted.is_set():
                raise timed_out()
            if connection.raw_sock is not None:
                connection.raw_sock.settimeout(remaining)
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            _check_size(total, field, limits)
        if aborted.is_set():
            raise timed_out()
        return b"".join(chunks), content_type
    except ImageInputError:
        raise
    except (http.client.InvalidURL, UnicodeError) as exc:
        raise ImageInputError(field, "invalid_url", f"malformed URL {shown}: {exc}", 400) from None
    except (TimeoutError, socket.timeout):
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
