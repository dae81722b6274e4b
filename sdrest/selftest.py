"""``sdrest selftest``: prove an install works, offline, in well under a minute.

Writes a synthetic (random-weight) SD1 model into a temporary directory, loads it with the
real native library, generates one small image and checks it, timing each stage.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np


@contextmanager
def _stage(name: str, out: TextIO, timings: dict[str, float]) -> Iterator[None]:
    print(f"  {name} ...", end="", flush=True, file=out)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        print(" FAILED", file=out)
        raise
    timings[name] = time.perf_counter() - started
    print(f" {timings[name]:.2f} s", file=out)


def run_selftest(
    out: TextIO, *, size: int = 64, steps: int = 1, threads: int = -1, workdir: Path | None = None
) -> dict[str, float]:
    """Run every stage; raise on the first failure. Returns the stage timings in seconds."""
    from sdrest._native import build_info, load_library
    from sdrest.engine.context import Context
    from sdrest.synthetic import write_sd1_checkpoint

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sdrest-selftest-", dir=workdir) as tmp:
        checkpoint = Path(tmp) / "selftest-sd1.safetensors"
        native: Any = None
        with _stage("open native library", out, timings):
            native = load_library()
        info = build_info()
        print(
            f"    {native.path} ({native.origin}); stable-diffusion.cpp {native.version}; "
            f"backends {', '.join(info.get('backends', ['?']))}",
            file=out,
        )
        with _stage("write synthetic SD1 model", out, timings):
            write_sd1_checkpoint(checkpoint, seed=0)
        print(f"    {checkpoint.stat().st_size / 2**20:.0f} MiB", file=out)
        with _stage("load model", out, timings):
            context = Context(model_path=checkpoint, n_threads=threads)
        with context, _stage(f"generate {size}x{size}, {steps} step(s)", out, timings):
            result = context.txt2img("a selftest", width=size, height=size, steps=steps, seed=42, sampler="euler")
        image = result.images[0]
        pixels = np.asarray(image, dtype=np.float32)
        with _stage("check image", out, timings):
            if image.size != (size, size):
                raise AssertionError(f"image is {image.size}, expected {(size, size)}")
            if float(pixels.std()) == 0.0:
                raise AssertionError("image is a single flat colour")
        print(
            f"    {image.size[0]}x{image.size[1]} {image.mode}, pixel mean {pixels.mean():.1f}, std {pixels.std():.1f}",
            file=out,
        )
    return timings


def main(out: TextIO, err: TextIO, **options: Any) -> int:
    print("sdrest selftest", file=out)
    started = time.perf_counter()
    try:
        run_selftest(out, **options)
    except Exception as exc:  # noqa: BLE001 - report any failure as a failed selftest
        print(f"selftest FAILED: {type(exc).__name__}: {exc}", file=err)
        return 1
    print(f"selftest passed in {time.perf_counter() - started:.1f} s", file=out)
    return 0
