"""A random-weight TAESD (tiny autoencoder) for SD1, loadable via ``--taesd``.

Why: a checkpoint without VAE tensors can only decode through a TAESD, and
the server's "decode with TAESD" option needs a file to test against. The
real TAESD is small (~2.4M params), so the full real layout is written.

Layout: the diffusers-format file of madebyollin/taesd
(``encoder.layers.N.*`` / ``decoder.layers.N.*``). The library loads it with
the prefix ``tae.`` and builds ``TinyEncoder`` / ``TinyDecoder``
(src/tae.hpp): 64 channels, 3 TAEBlocks per stage, z_channels 4 for SD1.
Stride/upsample convs have no bias.

Init: 1/sqrt(fan_in) everywhere, except the two output convs, which get
zero-sum kernels plus a constant bias (0.5 for the decoder's [0, 1] image):
their inputs are post-ReLU, and a plain random conv turns the positive
feature means into large per-channel offsets (whole colour channels clamped
to 0). The decoder gain is set for the latents this random UNet actually
produces (std ~15, saturating TAESD's ``tanh(z/3)*3`` input clamp): pixel
std ~70/255 around mid-grey.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._layers import SpecList, materialize
from .safetensors import TensorSpec, write_safetensors

__all__ = ["taesd_specs", "write_taesd"]

_C = 64
_Z = 4
_NUM_BLOCKS = 3
#: Output gains of the final convs (decoder output is an image in [0, 1];
#: encoder output is a latent that should have roughly unit std).
_DEC_OUT_GAIN = 1.0
_ENC_OUT_GAIN = 8.0


def _out_conv(s: SpecList, p: str, n_out: int, gain: float, bias: float) -> None:
    # Final conv after ReLU features: zero-sum kernels (no per-channel offset)
    # and a constant bias, so the decoder's [0, 1] output sits around
    # mid-grey with a usable spread instead of whole channels clamping to 0.
    s.add(f"{p}.weight", (n_out, _C, 3, 3), init="fan_in_centered", std=gain)
    s.add(f"{p}.bias", (n_out,), init="const", std=bias)


def _tae_block(s: SpecList, p: str, c: int = _C) -> None:
    # conv.0 / conv.2 / conv.4 with ReLUs between; n_in == n_out, so no skip conv.
    for k in ("0", "2", "4"):
        s.conv(f"{p}.conv.{k}", c, c, 3)


def taesd_specs(z_channels: int = _Z, include_encoder: bool = True) -> list[TensorSpec]:
    """Tensor specs of an SD1/SDXL-style TAESD (``z_channels`` = 4)."""
    s = SpecList("fan_in", gain=1.0)
    if include_encoder:
        p = "encoder.layers"
        i = 0
        s.conv(f"{p}.{i}", 3, _C, 3)
        i += 1
        _tae_block(s, f"{p}.{i}")
        i += 1
        for _stage in range(3):
            s.conv(f"{p}.{i}", _C, _C, 3, bias=False)  # stride-2 downsample
            i += 1
            for _ in range(_NUM_BLOCKS):
                _tae_block(s, f"{p}.{i}")
                i += 1
        _out_conv(s, f"{p}.{i}", z_channels, gain=_ENC_OUT_GAIN, bias=0.0)

    p = "decoder.layers"
    i = 0
    s.conv(f"{p}.{i}", z_channels, _C, 3)
    i += 2  # index 1 is nn.ReLU
    for _stage in range(3):
        for _ in range(_NUM_BLOCKS):
            _tae_block(s, f"{p}.{i}")
            i += 1
        i += 1  # nn.Upsample
        s.conv(f"{p}.{i}", _C, _C, 3, bias=False)
        i += 1
    _tae_block(s, f"{p}.{i}")
    i += 1
    _out_conv(s, f"{p}.{i}", 3, gain=_DEC_OUT_GAIN, bias=0.5)
    return s.specs


def write_taesd(path: str | os.PathLike[str], seed: int = 2) -> Path:
    """Write a synthetic SD1 TAESD (encoder + decoder, f16, ~4.9 MB) to ``path``."""
    path = Path(path)
    meta = {"sdrest.synthetic": "taesd-sd1", "sdrest.seed": str(seed)}
    write_safetensors(path, taesd_specs(), lambda spec: materialize(spec, seed), metadata=meta)
    return path
