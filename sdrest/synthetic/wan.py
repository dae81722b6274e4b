"""A random-weight Wan2.1 text-to-video model and a Wan tiny video autoencoder (TAEHV).

Why these sizes: the library fixes every Wan dimension from the number of blocks it finds
(src/wan.hpp, ``WanRunner``): 30 blocks mean Wan2.1-T2V-1.3B (dim 1536, FFN 8960, 12
heads, 16 latent channels), 40 mean a 14B model, anything else aborts the process. So the
smallest loadable Wan is the real 1.3B layout: 1.42 billion weights. It is written as GGUF
with every linear weight in random ``Q2_K`` blocks (~0.47 GB; see :mod:`.gguf`), the
library runs those directly. Biases, norms and modulations are f32, the 3-D patch
embedding f16 (the library's own types for them).

No text encoder: Wan's is UMT5-XXL (5.7 billion weights, also fixed). Without one the
library warns and conditions on zeros of the real shape (4096 x 256), so prompts change
nothing, but sampling, the MoE/VACE/image paths and decoding all run for real.

Decoding uses a TAEHV (``--taesd``; the ``tae.`` prefix, ``TinyVideoAutoEncoder`` in
src/tae.hpp): the real Wan VAE is 127M weights and slow on a CPU, the tiny one is 11M.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ._layers import SpecList, materialize
from .gguf import GgufTensor, q2k_blocks, write_gguf
from .safetensors import tensor_rng, write_safetensors

__all__ = ["WAN_LAYERS", "taehv_specs", "wan_tensors", "write_taehv", "write_wan"]

#: Wan2.1-T2V-1.3B, the smallest layout the library accepts (its dimensions are not read from the file).
WAN_LAYERS = 30
_DIM, _FFN, _IN, _OUT, _TEXT, _FREQ = 1536, 8960, 16, 16, 4096, 256
_PATCH = (1, 2, 2)


def wan_tensors() -> list[GgufTensor]:
    """The tensors of a Wan2.1 T2V 1.3B diffusion model, named as in the released files."""
    out: list[GgufTensor] = []

    def linear(prefix: str, n_in: int, n_out: int) -> None:
        out.append(GgufTensor(f"{prefix}.weight", (n_out, n_in), "Q2_K"))
        out.append(GgufTensor(f"{prefix}.bias", (n_out,)))

    # Conv3d weight as the library declares it (4-D: kernel t, h, w innermost, in*out channels).
    out.append(GgufTensor("patch_embedding.weight", (_IN * _DIM, *_PATCH), "F16"))
    out.append(GgufTensor("patch_embedding.bias", (_DIM,)))
    linear("text_embedding.0", _TEXT, _DIM)
    linear("text_embedding.2", _DIM, _DIM)
    linear("time_embedding.0", _FREQ, _DIM)
    linear("time_embedding.2", _DIM, _DIM)
    linear("time_projection.1", _DIM, _DIM * 6)
    for i in range(WAN_LAYERS):
        p = f"blocks.{i}"
        out.append(GgufTensor(f"{p}.modulation", (1, 6, _DIM)))
        for attn in ("self_attn", "cross_attn"):
            for proj in ("q", "k", "v", "o"):
                linear(f"{p}.{attn}.{proj}", _DIM, _DIM)
            out.append(GgufTensor(f"{p}.{attn}.norm_q.weight", (_DIM,)))
            out.append(GgufTensor(f"{p}.{attn}.norm_k.weight", (_DIM,)))
        out.append(GgufTensor(f"{p}.norm3.weight", (_DIM,)))
        out.append(GgufTensor(f"{p}.norm3.bias", (_DIM,)))
        linear(f"{p}.ffn.0", _DIM, _FFN)
        linear(f"{p}.ffn.2", _FFN, _DIM)
    out.append(GgufTensor("head.modulation", (1, 2, _DIM)))
    linear("head.head", _DIM, _OUT * math.prod(_PATCH))
    return out


def _make_wan(tensor: GgufTensor, seed: int) -> np.ndarray:
    rng = tensor_rng(seed, tensor.name)
    if tensor.dtype == "Q2_K":
        # 1/sqrt(fan_in): activations keep their scale through the 30 blocks.
        return q2k_blocks(rng, math.prod(tensor.shape), 1.0 / math.sqrt(tensor.shape[1]))
    if tensor.name.endswith(("norm_q.weight", "norm_k.weight", "norm3.weight")):
        return np.ones(tensor.shape, dtype="<f4")
    if tensor.name.endswith("modulation"):
        return (rng.standard_normal(tensor.shape) * 0.02).astype("<f4")
    if tensor.dtype == "F16":
        fan_in = _IN * math.prod(_PATCH)
        return (rng.standard_normal(tensor.shape) / math.sqrt(fan_in)).astype("<f2")
    return np.zeros(tensor.shape, dtype="<f4")  # biases


def write_wan(path: str | os.PathLike[str], seed: int = 5) -> Path:
    """Write the synthetic Wan2.1 T2V 1.3B diffusion model (GGUF, ~0.47 GB) to ``path``."""
    path = Path(path)
    write_gguf(
        path,
        wan_tensors(),
        lambda tensor: _make_wan(tensor, seed),
        metadata={"sdrest.synthetic": "wan2.1-t2v-1.3b", "sdrest.seed": str(seed)},
    )
    return path


# --- TAEHV (taew2_1 layout) ---

_Z = 16
_DEC_CHANNELS = (256, 128, 64, 64)
_HIDDEN = 64
_BLOCKS = 3


def _mem_block(s: SpecList, p: str, c: int) -> None:
    # MemBlock: conv.0 sees the input concatenated with the previous frame's (2c channels).
    s.conv(f"{p}.conv.0", 2 * c, c, 3)
    s.conv(f"{p}.conv.2", c, c, 3)
    s.conv(f"{p}.conv.4", c, c, 3)


def taehv_specs(include_encoder: bool = True) -> list:
    """Tensor specs of a Wan2.1 TAEHV (``decoder.N`` / ``encoder.N``, as taew2_1.safetensors)."""
    s = SpecList("fan_in", gain=1.0)
    if include_encoder:
        p = "encoder"
        s.conv(f"{p}.0", 3, _HIDDEN, 3)
        index = 2  # 1 is nn.ReLU
        for layer in range(3):
            stride = 1 if layer == 2 else 2
            s.conv(f"{p}.{index}.conv", _HIDDEN * stride, _HIDDEN, 1, bias=False)  # TPool
            s.conv(f"{p}.{index + 1}", _HIDDEN, _HIDDEN, 3, bias=False)  # stride-2 conv
            index += 2
            for _ in range(_BLOCKS):
                _mem_block(s, f"{p}.{index}", _HIDDEN)
                index += 1
        s.add(f"{p}.{index}.weight", (_Z, _HIDDEN, 3, 3), init="fan_in_centered", std=4.0)
        s.bias(f"{p}.{index}.bias", _Z)
    p = "decoder"
    s.conv(f"{p}.1", _Z, _DEC_CHANNELS[0], 3)  # 0 is the input clamp, 2 nn.ReLU
    index = 3
    for layer in range(3):
        c = _DEC_CHANNELS[layer]
        for _ in range(_BLOCKS):
            _mem_block(s, f"{p}.{index}", c)
            index += 1
        index += 1  # nn.Upsample
        stride = 1 if layer == 0 else 2
        s.conv(f"{p}.{index}.conv", c, c * stride, 1, bias=False)  # TGrow
        s.conv(f"{p}.{index + 1}", c, _DEC_CHANNELS[layer + 1], 3, bias=False)
        index += 2
    index += 1  # nn.ReLU
    # Zero-sum output kernels around a mid-grey bias (see taesd.py): frames with visible noise.
    s.add(f"{p}.{index}.weight", (3, _DEC_CHANNELS[-1], 3, 3), init="fan_in_centered", std=1.0)
    s.add(f"{p}.{index}.bias", (3,), init="const", std=0.5)
    return s.specs


def write_taehv(path: str | os.PathLike[str], seed: int = 6) -> Path:
    """Write a synthetic Wan2.1 TAEHV (encoder + decoder, f16) to ``path``."""
    path = Path(path)
    write_safetensors(
        path,
        taehv_specs(),
        lambda spec: materialize(spec, seed),
        metadata={"sdrest.synthetic": "taehv-wan2.1", "sdrest.seed": str(seed)},
    )
    return path
