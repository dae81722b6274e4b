"""Helpers shared by the tests: pictures, image checks, a fake clock.

A module of its own, not ``conftest``: each test folder with fixtures has a ``conftest`` of
its own, and ``from conftest import ...`` would find whichever one was imported last.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

#: Small and fast, yet big enough that a broken sampler or VAE shows in the pixels.
SIZE = 64


def test_image(size: int = SIZE, seed: int = 0) -> Image.Image:
    """A deterministic, structured RGB test picture (gradients plus a square)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    array = np.stack([x * 255 // size, y * 255 // size, (x + y) * 127 // size], axis=-1).astype(np.uint8)
    array[size // 4 : size // 2, size // 4 : size // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
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


#: A non-default value for every sampling field images and videos share (for the struct
#: read-back tests of both).
EVERY_SAMPLING_OPTION: dict[str, Any] = {
    "steps": 3,
    "sampler": "dpm++2m",
    "scheduler": "karras",
    "eta": 0.5,
    "flow_shift": 2.5,
    "timestep_shift": 250,
    "sigmas": [14.6, 3.0, 0.0],
    "cfg_scale": 4.5,
    "img_cfg_scale": 1.5,
    "guidance": 2.5,
    "slg": {"layers": [7, 8], "start": 0.05, "end": 0.3, "scale": 2.0},
}

#: Every VAE tiling option set, each to a value unlike its default (struct read-back tests).
EVERY_VAE_TILING_OPTION: dict[str, Any] = {
    "tile_size": 24,
    "tile_size_x": 32,
    "tile_size_y": 40,
    "rel_size_x": 0.5,
    "rel_size_y": 0.25,
    "overlap": 0.3,
}


def every_cache_option(mode: str) -> dict[str, Any]:
    """Every step-cache option set, each to a value unlike its default (struct read-back tests)."""
    return {
        "mode": mode,
        "reuse_threshold": 0.3,
        "start_percent": 0.2,
        "end_percent": 0.8,
        "error_decay_rate": 0.5,
        "use_relative_threshold": False,
        "reset_error_on_compute": False,
        "residual_diff_threshold": 0.2,
        "max_warmup_steps": 2,
        "max_cached_steps": 5,
        "max_continuous_cached_steps": 2,
        "taylorseer_n_derivatives": 3,
        "taylorseer_skip_interval": 2,
        "scm_mask": "1,0,1",
        "scm_policy_dynamic": False,
        "spectrum_w": 0.7,
        "spectrum_m": 5,
        "spectrum_lam": 2.0,
        "spectrum_window_size": 3,
        "spectrum_flex_window": 0.25,
        "spectrum_warmup_steps": 1,
        "spectrum_stop_percent": 0.5,
        "fn_compute_blocks": 4,
        "bn_compute_blocks": 2,
    }


def field_at(struct: dict[str, Any], path: str) -> Any:
    """A value of a C struct read back as nested dicts, by its dotted path ("sample_params.eta")."""
    value: Any = struct
    for part in path.split("."):
        value = value[part]
    return value
