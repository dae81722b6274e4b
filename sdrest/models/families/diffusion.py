"""Checkpoints and bare diffusion models: UNets (SD1, SD2, SDXL and their variants) and DiTs.

The rules mirror ``ModelLoader::get_sd_version`` in stable-diffusion.cpp's ``model.cpp`` (the
library's own notion of a version), plus the context dimension of the UNet's cross-attention,
which also works for UNet-only files without a text encoder.
"""

from __future__ import annotations

from typing import Any

from sdrest.models.families.common import (
    CONTEXT_TO_ARCH,
    UNKNOWN,
    Tensors,
    Verdict,
    any_name_has,
    dim_of,
    first_dim,
    shape_of,
)

#: Prefixes under which the denoiser's tensors live (checkpoints, ComfyUI, diffusers).
_DM_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "unet.")
#: How a denoiser's tensor names start once the prefix is stripped (UNets and DiTs).
_DM_STARTS = (
    "input_blocks.",
    "down_blocks.",
    "middle_block.",
    "double_blocks.",
    "single_blocks.",
    "joint_blocks.",
    "transformer_blocks.",
    "single_transformer_blocks.",
    "blocks.0.cross_attn.",
    "layers.0.adaLN_sa_ln.",
    "cap_embedder.",
    "img_in.",
    "nerf_final_layer_conv.",
    "conv_in.",
    "double_stream_modulation_img.",
)
CLIP_MARKERS = (
    "cond_stage_model.",
    "conditioner.embedders.",
    "te.",
    "text_encoders.",
    "text_model.",
    "text_encoder.",
    "clip_l.",
    "clip_g.",
    "t5xxl.",
)
VAE_MARKERS = ("first_stage_model.", "vae.")

#: Denoisers recognised by one marker tensor (after stripping the prefix), in
#: get_sd_version's order. Values: (architecture, variant).
_DIT_MARKERS: tuple[tuple[str, str, str | None], ...] = (
    ("nerf_final_layer_conv.", "flux", "chroma_radiance"),
    ("joint_blocks.", "sd3", None),
    ("transformer_blocks.0.img_mod.1.weight", "qwen_image", None),
    ("double_blocks.0.img_mlp.gate_proj.weight", "ovis_image", None),
    ("cap_embedder.0.weight", "z_image", None),
    ("layers.0.adaLN_sa_ln.weight", "ernie_image", None),
    ("input_blocks.8.0.time_mixer.mix_factor", "svd", None),
)

#: UNet tensors in original (ldm) and diffusers naming: (ldm, diffusers).
_UNET_FIRST_CONV = ("input_blocks.0.0.weight", "conv_in.weight")
_UNET_MIDDLE_1 = ("middle_block.1.", "mid_block.resnets.1.")
_UNET_OUT_311 = ("output_blocks.3.1.transformer_blocks.1", "up_blocks.1.attentions.0.transformer_blocks.1")
_UNET_OUT_71 = ("output_blocks.7.1", "up_blocks.2.attentions.1")


def strip_dm(names: list[str]) -> tuple[str, list[str]]:
    """The denoiser prefix in use and the denoiser's tensor names without it (all names
    when there is no prefix: a bare diffusion model file)."""
    for prefix in _DM_PREFIXES:
        stripped = [n[len(prefix) :] for n in names if n.startswith(prefix)]
        if stripped:
            return prefix, stripped
    return "", names


def has_denoiser(dm: list[str]) -> bool:
    return any(n.startswith(_DM_STARTS) for n in dm)


def context_dim(tensors: Tensors, prefix: str) -> int | None:
    """Cross-attention context dim: the 'in' side of any attn2.to_k weight ([inner, context])."""
    for name, info in tensors.items():
        if name.startswith(prefix) and name.endswith("attn2.to_k.weight") and info.shape and len(info.shape) == 2:
            return info.shape[1]
    return None


def _text_hidden(tensors: Tensors) -> int | None:
    """Width of the (first) CLIP text encoder, from its token embedding (get_sd_version's check)."""
    return first_dim(
        tensors,
        (
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
            "cond_stage_model.model.token_embedding.weight",
            "text_model.embeddings.token_embedding.weight",
            "te.text_model.embeddings.token_embedding.weight",
            "conditioner.embedders.0.model.token_embedding.weight",
            "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        ),
        -1,
    )


def _classify_unet(tensors: Tensors, prefix: str, dm: set[str], details: dict[str, Any]) -> Verdict:
    names = list(tensors)
    multiple_encoders = (
        any_name_has(names, "conditioner.embedders.1")
        or any_name_has(names, "cond_stage_model.1")
        or any(n.startswith("te.1") for n in names)
    )
    context = context_dim(tensors, prefix)
    hidden = _text_hidden(tensors)
    if context is not None:
        details["context_dim"] = context
    if hidden is not None:
        details["text_hidden_size"] = hidden
    has_label_emb = any(n.startswith(("label_emb.", "add_embedding.")) for n in dm)

    if multiple_encoders or context == 2048 or (has_label_emb and context in (None, 2048)):
        arch = "sdxl"
    elif context == 1280:
        arch = "sdxl_refiner"
    elif context in CONTEXT_TO_ARCH:
        arch = CONTEXT_TO_ARCH[context]
    elif hidden == 768:
        arch = "sd1"
    elif hidden == 1024:
        arch = "sd2"
    else:
        return UNKNOWN, None, details

    in_channels = first_dim(tensors, (prefix + _UNET_FIRST_CONV[0], prefix + _UNET_FIRST_CONV[1]), 1)
    if in_channels is not None:
        details["in_channels"] = in_channels
    has_middle_1 = any(n.startswith(_UNET_MIDDLE_1) for n in dm)
    has_out_311 = any(n.startswith(_UNET_OUT_311) for n in dm)
    has_out_71 = any(n.startswith(_UNET_OUT_71) for n in dm)

    variant: str | None = None
    if in_channels == 9:
        variant = "inpaint"
    elif in_channels == 8 and arch in ("sd1", "sdxl"):
        variant = "pix2pix"
    elif not has_middle_1 and any(n.startswith(("input_blocks.", "down_blocks.")) for n in dm):
        if arch == "sd1":
            variant = "tiny" if has_out_71 else "sdxs"
        elif arch == "sd2":
            attn = dim_of(tensors, prefix + "output_blocks.7.1.transformer_blocks.0.attn1.to_k.weight", -1)
            variant = "sdxs" if attn == 1024 else "tiny"
        elif arch == "sdxl":
            variant = "ssd1b" if has_out_311 else "vega"
    if arch == "sdxl_refiner":
        variant = variant or "refiner"
    return arch, variant, details


def _classify_dit(tensors: Tensors, prefix: str, dm: list[str], details: dict[str, Any]) -> Verdict | None:
    names = list(tensors)
    for marker, arch, variant in _DIT_MARKERS:
        if any(n.startswith(marker) for n in dm):
            return arch, variant, details
    if any("llm_adapter.blocks.0.cross_attn.q_proj.weight" in n for n in names):
        return "anima", None, details
    if any(n.startswith("double_stream_modulation_img.lin.weight") for n in dm):
        return "flux2", (None if any(n.startswith("single_blocks.47.linear1.weight") for n in dm) else "klein"), details
    if any(n.startswith("blocks.0.cross_attn.norm_k.weight") for n in dm):
        shape = shape_of(tensors, prefix + "patch_embedding.weight")
        has_img_emb = any(n.startswith("img_emb") for n in dm)
        # ggml folds the 5-D conv weight's two outer torch dims into its ne[3].
        channels = shape[0] * shape[1] if shape is not None and len(shape) >= 2 else None
        if channels is not None:
            details["patch_embedding_channels"] = channels
        variant = None
        if channels == 184320 and not has_img_emb:
            variant = "i2v"
        elif channels == 147456 and not has_img_emb:
            variant = "ti2v"
        return "wan", variant, details
    if any(n.startswith(("double_blocks.", "single_blocks.")) for n in dm):
        in_features = dim_of(tensors, prefix + "img_in.weight", -1)
        if in_features is not None:
            details["in_channels"] = in_features
        variant = {384: "fill", 128: "controls", 196: "flex2"}.get(in_features or 0)
        if variant is None and any("distilled_guidance_layer." in n for n in dm):
            variant = "chroma"
        return "flux", variant, details
    if any(n.startswith("single_transformer_blocks.") for n in dm):  # diffusers Flux
        return "flux", None, details
    return None


def classify_diffusion(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    prefix, dm = strip_dm(names)
    components = []
    if has_denoiser(dm):
        components.append("diffusion_model")
    if any(n.startswith(CLIP_MARKERS) for n in names):
        components.append("text_encoder")
    if any(n.startswith(VAE_MARKERS) for n in names):
        components.append("vae")
    details["components"] = components
    if "v_pred" in tensors:
        details["prediction"] = "v"
    elif "edm_vpred.sigma_max" in tensors:
        details["prediction"] = "edm_v"

    verdict = _classify_dit(tensors, prefix, dm, details)
    is_unet = verdict is None
    if verdict is None:
        dm_set = set(dm)
        if any(n.startswith(("input_blocks.", "down_blocks.")) for n in dm):
            verdict = _classify_unet(tensors, prefix, dm_set, details)
        else:
            verdict = (UNKNOWN, None, details)
    arch, variant, details = verdict
    if arch != UNKNOWN and variant is None and components == ["diffusion_model"]:
        variant = "unet_only" if is_unet else "diffusion_model"
    return arch, variant, details
