"""Shared fixtures: the real native library and synthetic models (built once, cached).

The synthetic models are random-weight files with the real tensor names and shapes
(:mod:`sdrest.synthetic`), written once into ``$SDREST_CACHE_DIR/synthetic`` (default
``~/.cache/sdrest/synthetic``) and reused by later runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from sdrest._native import NativeLibrary, load_library
from sdrest.synthetic import SyntheticModels, ensure_synthetic_models

#: Small and fast, yet big enough that a broken sampler or VAE shows in the pixels.
SIZE = 64


@pytest.fixture(scope="session")
def native() -> NativeLibrary:
    return load_library()


@pytest.fixture(scope="session")
def models() -> SyntheticModels:
    return ensure_synthetic_models()


@pytest.fixture(scope="session")
def sd1(models: SyntheticModels, native: NativeLibrary) -> Iterator:
    """One loaded SD1 context shared by the generation tests (loading takes seconds)."""
    from sdrest.engine import Context

    # img2img and inpainting need the VAE encoder, so keep it (vae_decode_only=False).
    with Context(model_path=models.checkpoint, vae_decode_only=False, n_threads=2) as context:
        yield context


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def assert_real_image(image: Image.Image, size: tuple[int, int]) -> None:
    """The image has the requested size and is not one flat colour (a broken decoder's tell)."""
    assert image.size == size
    values = pixels(image)
    assert np.isfinite(values).all()
    assert values.std() > 1.0, f"image is (almost) constant: std {values.std():.3f}"


def test_image(size: int = SIZE, seed: int = 0) -> Image.Image:
    """A deterministic, structured RGB test picture (gradients plus a square)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    array = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], axis=-1).astype(np.uint8)
    array[size // 4: size // 2, size // 4: size // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
    return Image.fromarray(array, "RGB")


test_image.__test__ = False  # a helper, not a test


class FakeClock:
    """A clock the test moves by hand (``clock.now += 61``)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
