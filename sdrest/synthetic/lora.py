"""A random kohya-format LoRA that the library applies to the synthetic SD1 model.

Why kohya naming: it is what almost every SD1 LoRA in the wild uses
(``lora_unet_<diffusers path>`` / ``lora_te_<HF CLIP path>`` with
``.lora_down.weight``, ``.lora_up.weight`` and a scalar ``.alpha``), so the
test exercises the library's real name conversion: ``convert_tensor_name``
turns ``_`` into ``.`` (keeping protected tokens like ``to_q``, ``down_blocks``)
and ``convert_diffusers_unet_to_original_sd1`` maps diffusers block paths to
the checkpoint's LDM names (name_conversion.cpp). The mapping used here is the
exact inverse, so every LoRA tensor finds its target and the log reports
"(N / N) LoRA tensors have been applied" with no "unused lora tensor".

Targets (``modules="attn"``, the default): in the UNet every transformer
block's attention projections plus the 1x1-conv ``proj_in``/``proj_out`` (so
both 2-D and 4-D LoRA shapes are covered); in the text encoder every layer's
q/k/v/out projections. ``modules="all"`` adds the feed-forward / MLP linears
(kohya's default set) at ~2.5x the merge time. ``alpha = rank / 2`` (so the alpha scaling is exercised) and the
up/down factors are sized so the merged update ``up @ down * alpha / rank``
has per-element std ``strength * 0.02`` - the same scale as the base weights:
clearly visible in the output, far from overflow in f16.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .safetensors import TensorSpec, tensor_rng, write_safetensors
from .sd1 import CLIP_PREFIX, UNET_PREFIX, sd1_tensor_specs

__all__ = ["kohya_name", "lora_specs", "lora_target_names", "write_lora"]

# "attn": attention projections + the 1x1-conv proj_in/proj_out (small and
# quick to merge: ~1.3 s on 2 cores). "all": also the feed-forward / MLP
# linears, i.e. kohya's default target set (~3 s to merge, ~3x the file).
_UNET_TARGETS = {
    "attn": re.compile(
        r"\.(?:transformer_blocks\.\d+\.attn[12]\.(?:to_q|to_k|to_v|to_out\.0)|proj_in|proj_out)\.weight$"
    ),
    "all": re.compile(
        r"\.(?:transformer_blocks\.\d+\.(?:attn[12]\.(?:to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2)"
        r"|proj_in|proj_out)\.weight$"
    ),
}
_TE_TARGETS = {
    "attn": re.compile(r"\.self_attn\.(?:q_proj|k_proj|v_proj|out_proj)\.weight$"),
    "all": re.compile(r"\.(?:self_attn\.(?:q_proj|k_proj|v_proj|out_proj)|mlp\.fc1|mlp\.fc2)\.weight$"),
}

#: Per-element std of the base weights the LoRA update is scaled against.
_BASE_STD = 0.02


def _ldm_to_diffusers_unet(path: str) -> str:
    """Inverse of the library's diffusers->SD1 map for attention blocks.

    input_blocks.{3i+j+1}.1 <- down_blocks.i.attentions.j
    output_blocks.{3i+j}.1  <- up_blocks.i.attentions.j
    middle_block.1          <- mid_block.attentions.0
    (holds for the full SD1 UNet and for the tiny UNet, which only drops blocks)
    """
    m = re.match(r"input_blocks\.(\d+)\.1\.(.*)$", path)
    if m:
        k = int(m.group(1)) - 1
        return f"down_blocks.{k // 3}.attentions.{k % 3}.{m.group(2)}"
    m = re.match(r"output_blocks\.(\d+)\.1\.(.*)$", path)
    if m:
        k = int(m.group(1))
        return f"up_blocks.{k // 3}.attentions.{k % 3}.{m.group(2)}"
    m = re.match(r"middle_block\.1\.(.*)$", path)
    if m:
        return f"mid_block.attentions.0.{m.group(1)}"
    raise ValueError(f"no kohya mapping for UNet tensor {path!r}")


def kohya_name(checkpoint_tensor: str) -> str:
    """Kohya LoRA module name for a checkpoint weight, e.g.
    ``model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight``
    -> ``lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q``."""
    if not checkpoint_tensor.endswith(".weight"):
        raise ValueError(checkpoint_tensor)
    base = checkpoint_tensor[: -len(".weight")]
    if base.startswith(UNET_PREFIX):
        return "lora_unet_" + _ldm_to_diffusers_unet(base[len(UNET_PREFIX) :]).replace(".", "_")
    te_prefix = CLIP_PREFIX[: -len("text_model.")]  # "cond_stage_model.transformer."
    if base.startswith(te_prefix):
        return "lora_te_" + base[len(te_prefix) :].replace(".", "_")
    raise ValueError(f"no kohya mapping for {checkpoint_tensor!r}")


def lora_target_names(
    checkpoint_specs: Iterable[TensorSpec], include_text_encoder: bool = True, modules: str = "attn"
) -> list[TensorSpec]:
    """The checkpoint weights a LoRA will target (2-D linears and 1x1 convs).

    ``modules``: ``"attn"`` (attention + proj_in/out) or ``"all"`` (also FF/MLP).
    """
    if modules not in _UNET_TARGETS:
        raise ValueError(f"modules must be one of {sorted(_UNET_TARGETS)}")
    unet_re, te_re = _UNET_TARGETS[modules], _TE_TARGETS[modules]
    out = []
    for spec in checkpoint_specs:
        unet = spec.name.startswith(UNET_PREFIX) and unet_re.search(spec.name)
        text = include_text_encoder and spec.name.startswith(CLIP_PREFIX) and te_re.search(spec.name)
        if unet or text:
            out.append(spec)
    return out


def lora_specs(targets: Iterable[TensorSpec], rank: int) -> list[TensorSpec]:
    """down / up / alpha specs (kohya naming) for each target weight."""
    specs: list[TensorSpec] = []
    for t in targets:
        if len(t.shape) not in (2, 4) or (len(t.shape) == 4 and t.shape[2:] != (1, 1)):
            raise ValueError(f"cannot target {t.name} with shape {t.shape}")
        n_out, n_in = t.shape[0], t.shape[1]
        tail = (1, 1) if len(t.shape) == 4 else ()
        k = kohya_name(t.name)
        specs.append(TensorSpec(f"{k}.lora_down.weight", (rank, n_in, *tail), "lora", 0.0, "F16"))
        specs.append(TensorSpec(f"{k}.lora_up.weight", (n_out, rank, *tail), "lora", 0.0, "F16"))
        specs.append(TensorSpec(f"{k}.alpha", (), "const", rank / 2, "F32"))
    return specs


def write_lora(
    path: str | os.PathLike[str],
    checkpoint_specs: Iterable[TensorSpec] | None = None,
    seed: int = 1,
    rank: int = 4,
    strength: float = 1.0,
    include_text_encoder: bool = True,
    modules: str = "attn",
) -> Path:
    """Write a kohya LoRA for the checkpoint described by ``checkpoint_specs``
    (default: the synthetic SD1 checkpoint) to ``path``.

    ``strength`` scales the merged weight update relative to the base weights'
    std (0.02); at 1.0 and multiplier 1 the image changes visibly, no NaN.
    """
    if rank < 1:
        raise ValueError("rank must be >= 1")
    path = Path(path)
    base = sd1_tensor_specs(include_vae=False) if checkpoint_specs is None else checkpoint_specs
    targets = lora_target_names(base, include_text_encoder, modules)
    if not targets:
        raise ValueError("no LoRA-able tensors in checkpoint_specs")
    specs = lora_specs(targets, rank)
    alpha = rank / 2
    # up and down ~ N(0, f): update std = f^2 * sqrt(rank) * alpha / rank
    f = math.sqrt(strength * _BASE_STD * rank / (alpha * math.sqrt(rank)))

    def make(spec: TensorSpec) -> np.ndarray:
        if spec.init == "const":
            return np.full(spec.shape, spec.std, dtype=np.float32)
        rng = tensor_rng(seed, spec.name)
        return rng.standard_normal(spec.shape, dtype=np.float32) * np.float32(f)

    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": "sd_v1",
        "sdrest.synthetic": "lora-sd1",
        "sdrest.seed": str(seed),
        "sdrest.strength": str(strength),
        "sdrest.modules": modules,
    }
    write_safetensors(path, specs, make, metadata=meta)
    return path
