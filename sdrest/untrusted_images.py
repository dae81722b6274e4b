"""The one way to open image bytes that came from outside: the allowed formats, a pixel limit,
and nothing decoded before both are checked.

Opening an image with Pillow reads only its header (and, for PNG, the chunks before the pixel
data); decoding happens at ``load()``, or when something asks for what may lie after the pixels
(a PNG's ``.text`` decodes the whole image to find late text chunks). A 657 KB PNG can declare
13000x13000 pixels and take 660 MB to decode, so every caller that handles bytes a client sent
(input images, ``/sdapi/v1/png-info``) opens them here, where the size is checked from the
header first. Pillow's own ``MAX_IMAGE_PIXELS`` guard is global state and only warns below twice
its value, so it is not relied on.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from sdrest.errors import SdrestError

__all__ = ["ALLOWED_FORMATS", "UntrustedImageError", "allowed_decoders", "open_untrusted"]

#: The formats accepted from clients (``MPO`` is how Pillow names multi-picture JPEGs).
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF")


class UntrustedImageError(SdrestError, ValueError):
    """Bytes that are not an allowed image, or one with more pixels than allowed.

    ``code`` is ``image_too_large`` (a 413 at the API), ``unknown_format`` (no allowed format
    recognised the bytes) or ``invalid_image`` (an allowed format with a broken header)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def allowed_decoders() -> list[str]:
    """The allowed formats this Pillow build can decode (all plugins registered first)."""
    Image.init()
    return [name for name in ALLOWED_FORMATS if name in Image.OPEN]


@contextmanager
def open_untrusted(source: bytes | Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image, opened but not decoded, once its format is allowed and its declared size is at
    most ``max_pixels``; closed on exit. Decoding it afterwards (``load()``, ``.text``) is then
    bounded by ``max_pixels``."""
    with io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb") as stream:
        try:
            image = Image.open(stream, formats=allowed_decoders())
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UntrustedImageError("image_too_large", f"image has too many pixels ({exc})") from None
        except UnidentifiedImageError:
            raise UntrustedImageError("unknown_format", "is not a PNG, JPEG, WebP, BMP or GIF image") from None
        except Exception as exc:  # noqa: BLE001 - malformed headers raise all sorts of things
            raise UntrustedImageError("invalid_image", f"could not read the image: {exc}") from None
        with image:
            width, height = image.size
            if width < 1 or height < 1:
                raise UntrustedImageError("invalid_image", f"image has no pixels ({width}x{height})")
            if width * height > max_pixels:
                raise UntrustedImageError(
                    "image_too_large",
                    f"image is {width}x{height} = {width * height} pixels, more than the {max_pixels} allowed",
                )
            yield image
