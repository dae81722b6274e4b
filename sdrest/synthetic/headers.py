"""Header-only model files: the tensor names and shapes of each architecture, no weights.

Why: the model library reads only headers (names, shapes, dtypes, metadata), so a listing,
detection or scan can be exercised on thousands of files that cost no disk and no time to
write. :func:`write_sparse_safetensors` writes a valid safetensors header whose data region is
a sparse hole (``truncate``); the ``*_checkpoint``, ``sd_vae``, ``kohya_lora``... builders give
the tensor layouts that stable-diffusion.cpp's version checks look at. The model-library tests
and ``benchmarks/scan.py`` build their files with these. For files the library can *load*, see
the other generators of :mod:`sdrest.synthetic`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Shape",
    "esrgan_basicsr",
    "esrgan_old_names",
    "flux_model",
    "kohya_lora",
    "sd1_checkpoint",
    "sd2_checkpoint",
    "sd3_checkpoint",
    "sd_unet",
    "sd_vae",
    "sdxl_checkpoint",
    "taesd",
    "write_sparse_safetensors",
]

Shape = tuple[int, ...]

_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8}


def write_sparse_safetensors(
    path: Path, tensors: Mapping[str, Shape | tuple[Shape, str]], metadata: Mapping[str, str] | None = None
) -> Path:
    """A valid safetensors file: consistent offsets, data region as a sparse hole."""
    header: dict[str, Any] = {}
    offset = 0
    for name, spec in tensors.items():
        shape, dtype = (spec, "F16") if not spec or isinstance(spec[0], int) else spec
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


# ------------------------------------------------------------------ architectures


def sd_unet(
    context: int,
    *,
    in_channels: int = 4,
    middle: bool = True,
    out_71: bool = True,
    prefix: str = "model.diffusion_model.",
) -> dict[str, Shape]:
    t = {
        f"{prefix}input_blocks.0.0.weight": (320, in_channels, 3, 3),
        f"{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
        f"{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight": (320, context),
        f"{prefix}output_blocks.3.1.transformer_blocks.0.attn1.to_k.weight": (640, 640),
        f"{prefix}out.2.weight": (4, 320, 3, 3),
    }
    if middle:
        t[f"{prefix}middle_block.1.proj_in.weight"] = (1280, 1280, 1, 1)
    if out_71:
        t[f"{prefix}output_blocks.7.1.proj_in.weight"] = (320, 320, 1, 1)
    return t


def sd_vae(latent: int = 4, prefix: str = "first_stage_model.") -> dict[str, Shape]:
    return {
        f"{prefix}decoder.conv_in.weight": (512, latent, 3, 3),
        f"{prefix}encoder.conv_in.weight": (128, 3, 3, 3),
        f"{prefix}encoder.conv_out.weight": (2 * latent, 512, 3, 3),
    }


def sd1_checkpoint(**unet: Any) -> dict[str, Shape]:
    return {
        **sd_unet(768, **unet),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        **sd_vae(),
    }


def sd2_checkpoint() -> dict[str, Shape]:
    return {**sd_unet(1024), "cond_stage_model.model.token_embedding.weight": (49408, 1024), **sd_vae()}


def sdxl_checkpoint(in_channels: int = 4) -> dict[str, Shape]:
    p = "model.diffusion_model."
    return {
        f"{p}input_blocks.0.0.weight": (320, in_channels, 3, 3),
        f"{p}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        f"{p}label_emb.0.0.weight": (1280, 2816),
        f"{p}middle_block.1.proj_in.weight": (1280, 1280),
        f"{p}output_blocks.3.1.transformer_blocks.1.attn1.to_k.weight": (640, 640),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
        **sd_vae(),
    }


def sd3_checkpoint() -> dict[str, Shape]:
    p = "model.diffusion_model."
    return {
        f"{p}joint_blocks.0.context_block.attn.qkv.weight": (4608, 1536),
        f"{p}x_embedder.proj.weight": (1536, 16, 2, 2),
        "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        **sd_vae(16),
    }


def flux_model(prefix: str = "model.diffusion_model.", in_features: int = 64) -> dict[str, Shape]:
    return {
        f"{prefix}img_in.weight": (3072, in_features),
        f"{prefix}double_blocks.0.img_attn.qkv.weight": (9216, 3072),
        f"{prefix}single_blocks.0.linear1.weight": (21504, 3072),
    }


def kohya_lora(pairs: Mapping[str, tuple[int, int]], rank: int = 4) -> dict[str, Any]:
    """``module -> (in, out)`` as kohya writes them (down [rank, in], up [out, rank], alpha [])."""
    t: dict[str, Any] = {}
    for module, (n_in, n_out) in pairs.items():
        t[f"{module}.lora_down.weight"] = (rank, n_in)
        t[f"{module}.lora_up.weight"] = (n_out, rank)
        t[f"{module}.alpha"] = ((), "F32")
    return t


def taesd(latent: int = 4) -> dict[str, Shape]:
    # madebyollin's numbering: decoder.layers.0 is a Clamp (no weights), 1 the first conv.
    return {
        "encoder.layers.0.weight": (64, 3, 3, 3),
        "encoder.layers.14.weight": (latent, 64, 3, 3),
        "decoder.layers.1.weight": (64, latent, 3, 3),
        "decoder.layers.3.conv.0.weight": (64, 64, 3, 3),
    }


def esrgan_basicsr(blocks: int = 23, scale: int = 4) -> dict[str, Shape]:
    t: dict[str, Shape] = {"conv_first.weight": (64, 3, 3, 3)}
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                t[f"body.{i}.rdb{r}.conv{c}.weight"] = (32 if c < 5 else 64, 64 + 32 * (c - 1), 3, 3)
    t["conv_body.weight"] = (64, 64, 3, 3)
    if scale >= 2:
        t["conv_up1.weight"] = (64, 64, 3, 3)
    if scale == 4:
        t["conv_up2.weight"] = (64, 64, 3, 3)
    t["conv_hr.weight"] = (64, 64, 3, 3)
    t["conv_last.weight"] = (3, 64, 3, 3)
    return t


def esrgan_old_names(blocks: int = 23) -> list[str]:
    """Original ESRGAN (x4) key names: model.0 conv, model.1.sub.N.RDBk, upsamplers to model.10."""
    names = ["model.0.weight", "model.0.bias"]
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                names.append(f"model.1.sub.{i}.RDB{r}.conv{c}.0.weight")
    names += [f"model.1.sub.{blocks}.weight", "model.3.weight", "model.6.weight", "model.8.weight", "model.10.weight"]
    return names
