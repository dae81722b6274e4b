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

http(s) URLs are fetched by :mod:`sdrest.api.url_fetch` (the SSRF-safe fetcher); this module
decodes what any source gave.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from sdrest.errors import SdrestError
from sdrest.untrusted_images import ALLOWED_FORMATS, UntrustedImageError, open_untrusted

if TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage

__all__ = [
    "ALLOWED_FORMATS",
    "READ_CHUNK",
    "ImageInputError",
    "ImageLimits",
    "check_declared",
    "check_size",
    "decode_image",
    "fit_to",
]

#: Pillow formats accepted. Pillow only tries these decoders (no EPS/Ghostscript, no exotic
#: parsers on untrusted bytes). MPO is how Pillow reports some camera JPEGs.
URL_POLICIES = ("off", "public", "any")

_SUPPORTED_MEDIA_TYPES = frozenset(
    {
        "image/png",
        "image/apng",
        "image/x-png",
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/webp",
        "image/bmp",
        "image/x-bmp",
        "image/x-ms-bmp",
        "image/gif",
    }
)
_GENERIC_MEDIA_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
#: Bytes read at a time from an upload or a fetched body.
READ_CHUNK = 64 * 1024


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
        check_size(len(data), field, limits)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ImageInputError(field, "invalid_image", "is empty", 400)
        lowered = text[:16].lower()
        if lowered.startswith("data:"):
            data, declared = _decode_data_url(text, field, limits)
        elif lowered.startswith(("http://", "https://")):
            from sdrest.api.url_fetch import fetch_url  # here: the fetcher imports this module's errors

            data, declared = fetch_url(text, field, limits)
        elif _SCHEME_RE.match(text[:64]):
            scheme = text.split(":", 1)[0].lower()
            raise ImageInputError(
                field,
                "url_not_allowed",
                f"unsupported URL scheme {scheme!r}; only http and https URLs are fetched",
                400,
            )
        else:
            data = _decode_base64(text, field, limits)
    elif hasattr(value, "stream"):
        data, declared = _read_upload(value, field, limits)
    else:
        raise ImageInputError(
            field,
            "invalid_image",
            f"expected a base64 string, data URL, http(s) URL or file upload, got {type(value).__name__}",
            400,
        )
    return _open_image(data, field, limits, declared)


def fit_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` resized to exactly ``width`` x ``height`` (Lanczos) when its size differs.

    The aspect ratio is not kept: the image is stretched to the requested size, as the native
    library does with init, mask and control images. Returns ``image`` itself when it already
    has that size.
    """
    if (
        isinstance(width, bool)
        or isinstance(height, bool)
        or not isinstance(width, int)
        or not isinstance(height, int)
        or width < 1
        or height < 1
    ):
        raise ValueError(f"width/height: must be positive integers, got {width!r}x{height!r}")
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------------------------
# sources


def check_size(size: int, field: str, limits: ImageLimits) -> None:
    if size > limits.max_bytes:
        raise ImageInputError(
            field, "image_too_large", f"image is larger than the {_human(limits.max_bytes)} limit", 413
        )


def _human(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_declared(declared: str | None, field: str, what: str) -> None:
    """Refuse a declared media type that is clearly not an image (``text/html``, ...)."""
    media = _media_type(declared)
    if media in _GENERIC_MEDIA_TYPES or media.startswith("image/"):
        return
    raise ImageInputError(
        field, "unsupported_media_type", f"{what} is {media!r}, not an image (PNG, JPEG, WebP, BMP or GIF)", 415
    )


def _decode_base64(text: str, field: str, limits: ImageLimits) -> bytes:
    compact = "".join(text.split())
    check_size(len(compact) * 3 // 4 - 2, field, limits)  # before decoding: no huge allocation
    padded = compact + "=" * (-len(compact) % 4)
    try:
        # altchars maps the URL-safe "-_" onto "+/": both alphabets decode
        data = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError(
            field, "invalid_base64", "is not valid base64 (nor a data: or http(s) URL)", 400
        ) from None
    if not data:
        raise ImageInputError(field, "invalid_image", "is empty", 400)
    check_size(len(data), field, limits)
    return data


def _decode_data_url(text: str, field: str, limits: ImageLimits) -> tuple[bytes, str]:
    header, sep, payload = text.partition(",")
    if not sep:
        raise ImageInputError(field, "invalid_base64", "malformed data URL (no ',')", 400)
    parts = [p.strip() for p in header[len("data:") :].split(";")]
    media = parts[0].lower()
    check_declared(media, field, "the data URL's media type")
    if any(p.lower() == "base64" for p in parts[1:]):
        return _decode_base64(payload, field, limits), media
    data = urllib.parse.unquote_to_bytes(payload)
    check_size(len(data), field, limits)
    return data, media


def _read_upload(upload: FileStorage, field: str, limits: ImageLimits) -> tuple[bytes, str | None]:
    declared = getattr(upload, "mimetype", None) or getattr(upload, "content_type", None)
    check_declared(declared, field, "the upload's content type")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = upload.stream.read(min(READ_CHUNK, limits.max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limits.max_bytes:
            check_size(total, field, limits)
    if not total:
        raise ImageInputError(field, "invalid_image", "the uploaded file is empty", 400)
    return b"".join(chunks), declared


def _open_image(data: bytes, field: str, limits: ImageLimits, declared: str | None) -> Image.Image:
    media = _media_type(declared)
    unsupported_type = media.startswith("image/") and media not in _SUPPORTED_MEDIA_TYPES
    try:
        with open_untrusted(data, limits.max_pixels) as image:
            return _decoded(image, field)
    except UntrustedImageError as exc:
        if exc.code == "image_too_large":
            raise ImageInputError(field, "image_too_large", str(exc), 413) from None
        if exc.code == "unknown_format" and unsupported_type:
            raise ImageInputError(
                field, "unsupported_media_type", f"{media} is not supported; use PNG, JPEG, WebP, BMP or GIF", 415
            ) from None
        raise ImageInputError(field, "invalid_image", str(exc), 422) from None


def _decoded(image: Image.Image, field: str) -> Image.Image:
    """The pixels of an opened image whose size was checked, upright, detached from its stream."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(field, "image_too_large", f"image has too many pixels ({exc})", 413) from None
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data: OSError, SyntaxError, ...
        raise ImageInputError(
            field, "invalid_image", f"the {image.format} image is truncated or corrupt ({exc})", 422
        ) from None
    try:
        result = ImageOps.exif_transpose(image)  # a copy, detached from the stream
    except Exception:  # noqa: BLE001 - a broken EXIF block shouldn't reject the pixels
        result = image.copy()
    if result is None or result is image:
        result = image.copy()
    return result
