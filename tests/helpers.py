"""Helpers shared by the tests: pictures, image checks, a fake clock.

A module of its own, not ``conftest``: each test folder with fixtures has a ``conftest`` of
its own, and ``from conftest import ...`` would find whichever one was imported last.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Small and fast, yet big enough that a broken sampler or VAE shows in the pixels.
SIZE = 64


def test_image(size: int = SIZE, seed: int = 0) -> Image.Image:
    """A deterministic, structured RGB test picture (gradients plus a square)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    array = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], axis=-1).astype(np.uint8)
    array[size // 4: size // 2, size // 4: size // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
    return Image.fromarray(array, "RGB")


test_image.__test__ = False  # a helper, not a test


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def assert_real_image(image: Image.Image, size: tuple[int, int]) -> None:
    """The image has the requested size and is not one flat colour (a broken decoder's tell)."""
    assert image.size == size
    values = pixels(image)
    assert np.isfinite(values).all()
    assert values.std() > 1.0, f"image is (almost) constant: std {values.std():.3f}"


class FakeClock:
    """A clock the test moves by hand (``clock.now += 61``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def nvidia_driver() -> bool:
    """Whether NVML finds an NVIDIA driver on this machine (tests marked ``gpu`` need one)."""
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True
