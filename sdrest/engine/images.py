"""Pillow images to and from the library's ``sd_image_t``."""

from __future__ import annotations

from typing import Any

from PIL import Image

from sdrest._native import ffi

_MODE_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


def fill_sd_image(target: Any, image: Image.Image, mode: str, keep: list[Any]) -> None:
    """Point the ``sd_image_t`` ``target`` at a copy of ``image`` converted to ``mode``.

    The pixel buffer is appended to ``keep``; the caller holds it until C is done.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    converted = image if image.mode == mode else image.convert(mode)
    raw = converted.tobytes()
    buffer = ffi.new("uint8_t[]", raw)
    keep.append(buffer)
    target.width = converted.width
    target.height = converted.height
    target.channel = _MODE_CHANNELS[mode]
    target.data = buffer


def image_from_sd(image: Any) -> Image.Image:
    """Copy an ``sd_image_t`` the library owns into a new Pillow image."""
    width, height, channels = int(image.width), int(image.height), int(image.channel)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None or image.data == ffi.NULL:
        raise ValueError(f"library returned an unusable image ({width}x{height}x{channels})")
    data = ffi.buffer(image.data, width * height * channels)[:]
    return Image.frombytes(mode, (width, height), data)
