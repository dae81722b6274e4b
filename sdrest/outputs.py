"""Writing generated images together with the parameters that made them.

Every image carries its parameters twice:

* the AUTOMATIC1111 *infotext* (:mod:`sdrest.infotext`): a PNG
  ``parameters`` text chunk, or for JPEG/WebP the EXIF ``UserComment`` (``b"UNICODE\\0"`` +
  UTF-16 big-endian text, exactly what A1111 writes through ``piexif``);
* sdrest's own metadata as JSON: a PNG ``sdrest`` text chunk, or an XMP packet for JPEG/WebP.

A sidecar ``<stem>.json`` (``{"infotext": ..., "metadata": ...}``) is written next to every
image as well, so nothing depends on one container's quirks (EXIF size limits, tools that strip
metadata). All files are written atomically: a hidden temporary file, then :func:`os.replace`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from PIL import Image, ImageOps, PngImagePlugin

__all__ = [
    "discard_job_outputs",
    "image_parameters",
    "read_parameters",
    "thumbnail",
    "write_image",
]

# output format name -> (Pillow format, file extension)
_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "jpeg": ("JPEG", ".jpg"),
    "jpg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
}
_DEFAULT_QUALITY = 90

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_UNICODE_PREFIX = b"UNICODE\0"
_ASCII_PREFIX = b"ASCII\0\0\0"
# A JPEG APP1 segment holds at most 65533 bytes; past that the container can't carry it (the
# sidecar still does).
_JPEG_SEGMENT_LIMIT = 65000

_XMP_NS = "urn:sdrest:ns:1.0/"
_XMP_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '  <rdf:Description rdf:about="" xmlns:sdrest="' + _XMP_NS + '">\n'
    "   <sdrest:metadata>{}</sdrest:metadata>\n"
    "  </rdf:Description>\n"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>'
)

_STEM_MAX = 200


# --------------------------------------------------------------------------------------------
# writing


def _check_format(fmt: str) -> tuple[str, str]:
    key = fmt.lower() if isinstance(fmt, str) else fmt
    if key not in _FORMATS:
        raise ValueError(f"output_format: must be one of png, jpeg (jpg), webp; got {fmt!r}")
    return _FORMATS[key]


def _check_quality(quality: int | None) -> None:
    if quality is None:
        return
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"output_quality: must be an integer from 1 to 100, got {quality!r}")


def _check_stem(stem: str) -> None:
    if (
        not isinstance(stem, str)
        or not stem
        or len(stem) > _STEM_MAX
        or stem.startswith(".")
        or ".." in stem
        or any(c in stem for c in "/\\\0:")
        or (os.sep in stem)
        or (os.altsep and os.altsep in stem)
        or any(ord(c) < 32 for c in stem)
    ):
        raise ValueError(f"file name must be a plain name (no path separators, no '..', no leading '.'), got {stem!r}")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file in the same directory."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def discard_job_outputs(outputs_dir: Path, job_id: str) -> None:
    """Remove every file a job wrote under ``outputs_dir/<job_id>``, finished or cut off.

    For a job that ends without completing (failed, cancelled, interrupted, sent back to the
    queue): a worker killed between writing its images and reporting them leaves files that no
    job record names, and nothing would ever show or delete them.
    """
    root = outputs_dir.resolve()
    target = (root / job_id).resolve()
    if target.parent != root:
        raise ValueError(f"job id must be a plain name, got {job_id!r}")
    shutil.rmtree(target, ignore_errors=True)


def _user_comment(text: str) -> bytes:
    """EXIF UserComment as A1111 writes it (``piexif.helper.UserComment.dump(..., "unicode")``)."""
    return _UNICODE_PREFIX + text.encode("utf-16-be", errors="replace")


def _decode_user_comment(raw: Any) -> str | None:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, (bytes, bytearray)):
        return None
    raw = bytes(raw)
    if raw.startswith(_UNICODE_PREFIX):
        return raw[len(_UNICODE_PREFIX) :].decode("utf-16-be", errors="replace")
    if raw.startswith(_ASCII_PREFIX):
        return raw[len(_ASCII_PREFIX) :].decode("ascii", errors="replace")
    return raw[8:].decode("utf-8", errors="replace").rstrip("\0") if len(raw) >= 8 else None


def _xmp_packet(metadata_json: str) -> bytes:
    return _XMP_TEMPLATE.format(xml_escape(metadata_json)).encode("utf-8")


def _metadata_from_xmp(xmp: Any) -> dict | None:
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if not isinstance(xmp, (bytes, bytearray)):
        return None
    # strip the <?xpacket?> processing instructions' BOM etc. by parsing just the xmpmeta element
    data = bytes(xmp)
    start, end = data.find(b"<x:xmpmeta"), data.rfind(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        return None
    try:
        root = ElementTree.fromstring(data[start : end + len(b"</x:xmpmeta>")])
    except ElementTree.ParseError:
        return None
    node = root.find(f".//{{{_XMP_NS}}}metadata")
    if node is None or not node.text:
        return None
    try:
        value = json.loads(node.text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def write_image(
    image: Image.Image,
    directory: Path | str,
    stem: str,
    *,
    fmt: str = "png",
    quality: int | None = None,
    infotext: str,
    metadata: Mapping[str, Any],
    embed: bool = True,
) -> Path:
    """Write ``image`` as ``directory/stem.png|.jpg|.webp`` with its parameters; returns the path.

    ``fmt``: ``png``, ``jpeg`` (or ``jpg``; written as ``.jpg``) or ``webp``, else ``ValueError``
    naming ``output_format``. ``quality`` (1..100, else ``ValueError`` naming ``output_quality``)
    applies to JPEG/WebP (default 90); PNG is lossless and ignores it. ``stem`` must be a plain
    file name. The sidecar ``stem.json`` is written first, so when the image appears its
    sidecar is already there. JPEG drops alpha (converted to RGB, as A1111 does). ``embed=False``
    writes the parameters to the sidecar only, none into the image file (sd-cli's
    ``--disable-image-metadata``).
    """
    pil_format, ext = _check_format(fmt)
    _check_quality(quality)
    _check_stem(stem)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}{ext}"

    metadata = dict(metadata)
    metadata_json = json.dumps(metadata, ensure_ascii=False, default=str)
    sidecar = {"infotext": infotext, "metadata": json.loads(metadata_json)}
    _atomic_write(
        directory / f"{stem}.json", json.dumps(sidecar, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    )

    buffer = io.BytesIO()
    if not embed:
        out = image if pil_format != "JPEG" or image.mode in ("RGB", "L") else image.convert("RGB")
        lossy = {} if pil_format == "PNG" else {"quality": quality or _DEFAULT_QUALITY}
        out.save(buffer, format=pil_format, **lossy)
    elif pil_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", infotext)  # tEXt, or iTXt when not Latin-1 (as A1111)
        info.add_text("sdrest", metadata_json)
        image.save(buffer, format="PNG", pnginfo=info)
    else:
        if pil_format == "JPEG":
            out = image if image.mode in ("RGB", "L") else image.convert("RGB")
        else:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            out = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if has_alpha else "RGB")
        exif = Image.Exif()
        exif.endian = ">"  # big-endian, matching the UTF-16 BE comment (as piexif writes)
        exif[_EXIF_IFD] = {_USER_COMMENT: _user_comment(infotext)}
        exif_bytes = exif.tobytes()
        xmp = _xmp_packet(json.dumps(metadata, ensure_ascii=True, default=str))
        options: dict[str, Any] = {"quality": quality or _DEFAULT_QUALITY}
        if pil_format == "WEBP" or len(exif_bytes) <= _JPEG_SEGMENT_LIMIT:
            options["exif"] = exif_bytes
        if pil_format == "WEBP" or len(xmp) <= _JPEG_SEGMENT_LIMIT:
            options["xmp"] = xmp
        out.save(buffer, format=pil_format, **options)
    _atomic_write(target, buffer.getvalue())
    return target


def _read_sidecar(path: Path) -> bytes | None:
    sidecar = path.with_suffix(".json")
    if sidecar == path:
        return None
    try:
        return sidecar.read_bytes()
    except OSError:
        return None


def read_parameters(path: Path | str) -> tuple[str | None, dict | None]:
    """``(infotext, metadata)`` of an image :func:`write_image` wrote (each ``None`` if absent).

    Reads the container first (PNG text chunks; EXIF UserComment and XMP for JPEG/WebP), then
    falls back to the ``stem.json`` sidecar. Also reads A1111's own files (infotext only).
    """
    path = Path(path)
    return parameters_of(path, lambda: _read_sidecar(path))


def parameters_of(source: Path | bytes, sidecar: Callable[[], bytes | None]) -> tuple[str | None, dict | None]:
    """:func:`read_parameters` of an image file or its bytes (our own: see
    :func:`image_parameters` for a client's); ``sidecar()`` gives the bytes of its JSON sidecar
    (None if it has none), asked only when the image lacks something."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        return image_parameters(im, sidecar)


def image_parameters(im: Image.Image, sidecar: Callable[[], bytes | None]) -> tuple[str | None, dict | None]:
    """The infotext and sdrest metadata of an opened image (for bytes from a client, opened with
    :func:`~sdrest.untrusted_images.open_untrusted`, which bounds any decode this needs)."""
    text: str | None = None
    metadata: dict | None = None
    if im.format == "PNG":
        # Text chunks before the pixel data (where Pillow, so A1111 and sdrest, write them) are in
        # .info without decoding; only a PNG that keeps them after the pixels needs .text, which
        # decodes the image to find them.
        chunks = im.info if "parameters" in im.info or "sdrest" in im.info else (getattr(im, "text", {}) or {})
        text = chunks.get("parameters") if isinstance(chunks.get("parameters"), str) else None
        raw = chunks.get("sdrest")
        if isinstance(raw, str) and raw:
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            metadata = value if isinstance(value, dict) else None
    else:
        try:
            text = _decode_user_comment(im.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT))
        except Exception:  # noqa: BLE001 - malformed EXIF: fall back to the sidecar
            text = None
        metadata = _metadata_from_xmp(im.info.get("xmp"))
    if text is None or metadata is None:
        found = _sidecar_fields(sidecar())
        if text is None and isinstance(found.get("infotext"), str):
            text = found["infotext"]
        if metadata is None and isinstance(found.get("metadata"), dict):
            metadata = found["metadata"]
    return text, metadata


def _sidecar_fields(raw: bytes | None) -> dict:
    if raw is None:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------------------------
# thumbnails


def thumbnail(path: Path | str, size: int, cache_dir: Path | str) -> Path:
    """A thumbnail of ``path`` whose longest side is ``size`` (16..1024), cached in ``cache_dir``.

    Images smaller than ``size`` are not enlarged. The cache key is (resolved source path,
    modification time, file size, ``size``), so a rewritten source gets a new thumbnail and
    repeated requests reuse the file on disk. JPEG (quality 85) unless the source has
    transparency, then PNG. Written atomically, so concurrent requests at worst both encode it.
    The cache is never pruned here.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
        raise ValueError(f"size: must be an integer from 16 to 1024, got {size!r}")
    source = Path(path).resolve()
    stat = source.stat()
    cache_dir = Path(cache_dir)
    key = hashlib.sha256(f"{source}\0{stat.st_mtime_ns}\0{stat.st_size}\0{size}".encode()).hexdigest()[:32]
    for ext in (".jpg", ".png"):
        cached = cache_dir / f"{key}{ext}"
        if cached.is_file():
            return cached
    data, ext = thumbnail_bytes(source, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"{key}{ext}"
    _atomic_write(cached, data)
    return cached


def thumbnail_bytes(source: Path | bytes, size: int) -> tuple[bytes, str]:
    """The thumbnail of an image file or its bytes as ``(bytes, ".jpg" or ".png")``: longest
    side at most ``size``, JPEG (quality 85) unless it has transparency, then PNG."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im = ImageOps.exif_transpose(im)
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    buffer = io.BytesIO()
    if has_alpha:
        im.convert("RGBA").save(buffer, format="PNG")
        return buffer.getvalue(), ".png"
    (im if im.mode in ("RGB", "L") else im.convert("RGB")).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), ".jpg"


#: The thumbnail sizes served (a request is rounded up to the next): a handful of files per
#: image at most, however many sizes clients ask for.
THUMBNAIL_SIZES = (32, 64, 128, 256, 512, 1024)
#: Where a job's thumbnails live: inside its output folder, so they go when the job goes.
THUMBNAIL_DIR = ".thumbnails"


def job_thumbnail(path: Path | str, requested: int, job_dir: Path | str) -> Path:
    """A thumbnail of one of a job's images: ``requested`` rounded up to :data:`THUMBNAIL_SIZES`,
    cached in the job's own folder."""
    return thumbnail(path, thumbnail_size(requested), Path(job_dir) / THUMBNAIL_DIR)


def thumbnail_size(requested: int) -> int:
    """The size served for a request of ``requested`` pixels (rounded up, at most 1024)."""
    return next((s for s in THUMBNAIL_SIZES if s >= requested), THUMBNAIL_SIZES[-1])
