"""A random-weight 4x ESRGAN (RRDBNet) upscaler for the library's upscaler.

Why this layout: ``ESRGAN::load_from_file`` (src/esrgan.hpp) infers the
architecture from tensor names only. In the BasicSR ("original") naming it
counts ``body.N.`` blocks for num_block and picks scale 4 when
``conv_up2.weight`` exists; ``num_feat = 64`` and ``num_grow_ch = 32`` are
hard-coded, so only the number of RRDB blocks can shrink. One block (the real
RealESRGAN_x4plus has 23) keeps the file at ~1.7 MB and upscaling fast, while
still exercising the RRDB code path.

Init: a purely random RRDBNet turns the positive means of its leaky-ReLU
features into large per-channel offsets (whole colour channels clamp to 0
or 1). Instead the trunk convs (conv_first, conv_up1/2, conv_hr, conv_last)
are an identity on the first three channels plus 1/sqrt(fan_in) noise, the
RRDB blocks are plain 1/sqrt(fan_in), and conv_body (whose output is added to
the trunk) is small. The result is the input upscaled 4x plus random texture,
so tests can check both the size and that the output follows the input.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._layers import SpecList, materialize
from .safetensors import TensorSpec, write_safetensors

__all__ = ["esrgan_specs", "write_esrgan"]

NUM_FEAT = 64
NUM_GROW = 32
#: Gain of the random part of the trunk convs (their identity part carries
#: the RGB input through, so the output is the input upscaled plus texture).
_TRUNK_NOISE = 0.3


def esrgan_specs(num_block: int = 1, scale: int = 4) -> list[TensorSpec]:
    """Tensor specs of an RRDBNet in BasicSR naming (scale 1, 2 or 4)."""
    if scale not in (1, 2, 4):
        raise ValueError("scale must be 1, 2 or 4")
    s = SpecList("fan_in", gain=1.0)
    f, g = NUM_FEAT, NUM_GROW

    def trunk(name: str, n_in: int, n_out: int) -> None:
        s.add(f"{name}.weight", (n_out, n_in, 3, 3), init="identity", std=_TRUNK_NOISE)
        s.bias(f"{name}.bias", n_out)

    trunk("conv_first", 3, f)
    for b in range(num_block):
        for r in (1, 2, 3):
            p = f"body.{b}.rdb{r}"
            s.conv(f"{p}.conv1", f, g, 3)
            s.conv(f"{p}.conv2", f + g, g, 3)
            s.conv(f"{p}.conv3", f + 2 * g, g, 3)
            s.conv(f"{p}.conv4", f + 3 * g, g, 3)
            s.conv(f"{p}.conv5", f + 4 * g, f, 3)
    # the body's output is *added* to the trunk, so it must stay small
    s.conv("conv_body", f, f, 3, std=_TRUNK_NOISE)
    if scale >= 2:
        trunk("conv_up1", f, f)
    if scale == 4:
        trunk("conv_up2", f, f)
    trunk("conv_hr", f, f)
    trunk("conv_last", f, 3)
    return s.specs


def write_esrgan(path: str | os.PathLike[str], seed: int = 3, num_block: int = 1) -> Path:
    """Write a synthetic 4x RRDBNet upscaler (f16 safetensors) to ``path``."""
    path = Path(path)
    meta = {"sdrest.synthetic": "esrgan-x4", "sdrest.seed": str(seed), "sdrest.num_block": str(num_block)}
    write_safetensors(path, esrgan_specs(num_block), lambda spec: materialize(spec, seed), metadata=meta)
    return path
