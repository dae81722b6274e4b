"""The other model types: upscalers (ESRGAN), ControlNets, embeddings and text encoders."""

from __future__ import annotations

import re
from typing import Any

from sdrest.models.families.common import (
    CONTEXT_TO_ARCH,
    UNKNOWN,
    Tensors,
    Verdict,
    common_prefix,
    dim_of,
    first_dim,
    shape_of,
)
from sdrest.models.families.diffusion import context_dim


def classify_upscaler(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    """RRDBNet ESRGANs in both key layouts, as esrgan.hpp detects them."""
    names = list(tensors)
    details: dict[str, Any] = {}
    if "model.0.weight" in tensors:  # original ESRGAN layout
        blocks = [int(m.group(1)) for n in names if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", n))]
        if not blocks:
            return UNKNOWN, None, details
        highest = max((int(m.group(1)) for n in names if (m := re.match(r"model\.(\d+)\.", n))), default=0)
        scale = 1 if highest <= 4 else 2 if highest <= 7 else 4
        details.update(layout="esrgan", num_blocks=max(blocks) + 1, scale=scale)
        features = dim_of(tensors, "model.0.weight", 0)
    elif "conv_first.weight" in tensors:  # BasicSR / Real-ESRGAN layout
        blocks = [int(m.group(1)) for n in names if (m := re.match(r"body\.(\d+)\.rdb", n))]
        if not blocks:
            return UNKNOWN, None, details
        scale = 4 if "conv_up2.weight" in tensors else 2 if "conv_up1.weight" in tensors else 1
        details.update(layout="basicsr", num_blocks=max(blocks) + 1, scale=scale)
        features = dim_of(tensors, "conv_first.weight", 0)
    else:
        return UNKNOWN, None, details
    if features is not None:
        details["num_features"] = features
    return "esrgan", None, details


def classify_controlnet(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    if any(n.startswith(("controlnet_blocks.", "controlnet_single_blocks.")) for n in names) and any(
        re.match(r"(transformer_blocks|single_transformer_blocks|double_blocks)\.\d", n) for n in names
    ):
        return "flux", None, details
    prefix = common_prefix(names, ("control_model.", ""))
    is_control = prefix == "control_model." or any(
        n.startswith(("controlnet_", "input_hint_block.", "zero_convs.")) for n in names
    )
    if not is_control:
        return UNKNOWN, None, details
    context = context_dim(tensors, prefix)
    if context is not None:
        details["context_dim"] = context
        if context in CONTEXT_TO_ARCH:
            return CONTEXT_TO_ARCH[context], None, details
    if any("add_embedding" in n or "label_emb" in n for n in names):
        return "sdxl", None, details
    return UNKNOWN, None, details


_EMBEDDING_WIDTH = {768: "sd1", 1024: "sd2"}


def classify_embedding(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    details: dict[str, Any] = {}
    clip_l, clip_g = shape_of(tensors, "clip_l"), shape_of(tensors, "clip_g")
    if clip_g is not None:
        details["vectors"] = clip_g[0] if clip_g else None
        return "sdxl", None, details
    for name in ("emb_params", *(n for n in tensors if n.startswith("string_to_param."))):
        shape = shape_of(tensors, name)
        if shape is not None:
            width = shape[-1] if shape else None
            details["vectors"] = shape[0] if len(shape) == 2 else 1
            details["width"] = width
            return _EMBEDDING_WIDTH.get(width or 0, UNKNOWN), None, details
        if name in tensors:  # names-only pickle: it is an embedding, width unknown
            return UNKNOWN, None, details
    if clip_l is not None:
        return "sd1", None, details
    return UNKNOWN, None, details


def classify_text_encoder(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    llm_arch = meta.get("general.architecture")
    clip_width = first_dim(tensors, [n for n in names if n.endswith("token_embedding.weight")], -1)
    if clip_width is not None:
        details["hidden_size"] = clip_width
        arch = {768: "clip_l", 1024: "clip_h", 1280: "clip_g"}.get(clip_width, UNKNOWN)
        return arch, None, details
    shared = shape_of(tensors, "shared.weight") or shape_of(tensors, "encoder.embed_tokens.weight")
    if any(n.startswith("encoder.block.") for n in names) or llm_arch in ("t5", "t5encoder"):
        if shared is not None:
            details["hidden_size"], details["vocab_size"] = shared[1], shared[0]
            return ("umt5xxl" if shared[0] > 200_000 else "t5xxl" if shared[1] == 4096 else "t5"), None, details
        return "t5xxl", None, details
    if llm_arch or any(n.startswith(("model.layers.", "layers.", "blk.")) for n in names):
        if llm_arch:
            details["llm_architecture"] = llm_arch
        return "llm", None, details
    return UNKNOWN, None, details
