"""LoRAs and other LoRA-type networks (LoHa, LoKr): their base architecture and rank."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sdrest.models.families.common import CONTEXT_TO_ARCH, UNKNOWN, Tensors, Verdict

#: LoRA "down" matrices, shaped [rank, in_features] (LoHa's hada_w1_b too).
_LORA_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".hada_w1_b")
#: Any of these marks a file as a LoRA-type network (LoKr has no [rank, in] matrix).
LORA_MARKERS = (*_LORA_DOWN_SUFFIXES, ".lokr_w1", ".lokr_w2")


def _lora_in_dim(tensors: Tensors, pattern: re.Pattern[str]) -> int | None:
    """In-features of the first LoRA down matrix whose module name matches ``pattern``."""
    for name, info in tensors.items():
        if name.endswith(_LORA_DOWN_SUFFIXES) and pattern.search(name) and info.shape and len(info.shape) >= 2:
            return info.shape[1]
    return None


_ATTN2_K = re.compile(r"attn2[._]to_k")
_TE_Q = re.compile(
    r"(lora_te1?_|text_encoder\.|te1?\.)"
    r"text_model[._]encoder[._]layers[._]\d+[._]self_attn[._](q|k|v)_proj"
)
_META_ARCH = (
    ("flux", "flux"),
    ("sd3", "sd3"),
    ("stable-diffusion-3", "sd3"),
    ("xl", "sdxl"),
    ("sd_v2", "sd2"),
    ("v2", "sd2"),
    ("sd_v1", "sd1"),
    ("v1", "sd1"),
)


def _lora_format(names: list[str]) -> str:
    if any(n.startswith(("lora_unet_", "lora_te")) for n in names):
        return "kohya"
    if any(".lora_A." in n or ".lora_B." in n for n in names):
        return "peft"
    if any(".lora.down." in n or ".lora_down." in n for n in names):
        return "diffusers"
    if any(".hada_w1" in n or ".lokr_w" in n for n in names):
        return "lycoris"
    return "unknown"


def classify_lora(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    names = list(tensors)
    details: dict[str, Any] = {"lora_format": _lora_format(names)}
    ranks = Counter(
        info.shape[0]
        for n, info in tensors.items()
        if n.endswith(_LORA_DOWN_SUFFIXES[:3]) and info.shape and len(info.shape) >= 2
    )
    if ranks:
        details["rank"] = ranks.most_common(1)[0][0]
    joined = "\n".join(names)

    if re.search(r"(double_blocks|single_blocks|single_transformer_blocks)[._]\d", joined):
        return "flux", None, details
    if re.search(r"joint_blocks[._]\d", joined):
        return "sd3", None, details
    if re.search(r"transformer_blocks[._]\d+[._](img_mod|img_mlp|txt_mod|txt_mlp)", joined):
        return "qwen_image", None, details
    if re.search(r"(context_refiner|noise_refiner)[._]\d", joined):
        return "z_image", None, details
    if re.search(r"(^|[._])blocks[._]\d+[._]cross_attn[._]", joined, re.M) and "transformer_blocks" not in joined:
        return "wan", None, details
    if re.search(r"^transformer\.transformer_blocks\.\d", joined, re.M):
        return "sd3", None, details  # diffusers SD3 (Flux would also have single_transformer_blocks)

    unet = re.search(
        r"(input_blocks|down_blocks|middle_block|mid_block|output_blocks|up_blocks)[._]\d|mid_block", joined
    )
    te2 = any(n.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for n in names)
    context = _lora_in_dim(tensors, _ATTN2_K)
    te_hidden = _lora_in_dim(tensors, _TE_Q)
    if context is not None:
        details["context_dim"] = context
    if te_hidden is not None:
        details["text_hidden_size"] = te_hidden
    if unet or te_hidden or te2:
        if te2 or context == 2048:
            return "sdxl", None, details
        if context in (768, 1024):
            return CONTEXT_TO_ARCH[context], None, details
        if te_hidden in (768, 1024):
            return CONTEXT_TO_ARCH[te_hidden], None, details
    # Keys say nothing decisive: trust the trainer's metadata (kohya/modelspec), if any.
    hint = str(meta.get("modelspec.architecture") or meta.get("ss_base_model_version") or "").lower()
    for needle, arch in _META_ARCH:
        if needle in hint:
            details["source"] = "metadata"
            return arch, None, details
    return UNKNOWN, None, details
