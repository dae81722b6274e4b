"""Which architecture a model file is for, from its tensor names and a few shapes.

Why: users drop files into folders with names like ``model (3).safetensors``; the UI
must still say "SDXL checkpoint" or "Flux LoRA", and the server can refuse an SD1 LoRA
on an SDXL checkpoint before spending a minute loading it. Only headers are read (see
:mod:`sdrest.models.headers`), so detecting a 20 GB file costs a few KB of I/O.

The checkpoint rules mirror ``ModelLoader::get_sd_version`` in stable-diffusion.cpp's
``model.cpp`` (the library's own notion of a version), plus the context dimension of
the UNet's cross-attention, which also works for UNet-only files without a text encoder.
Shapes are torch order (outermost first): ggml's ``ne[0]`` is the *last* torch dim.

Nothing here raises for a bad file: :func:`detect` returns architecture ``"unknown"``
with ``error`` set, because one corrupt download must not break a library listing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrest.models.headers import Header, HeaderError, TensorInfo, read_header
from sdrest.models.types import ModelType

__all__ = ["Detection", "UNKNOWN", "classify", "detect", "guess_kind"]

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Detection:
    """The verdict on one file.

    ``architecture`` is the base model family (``"sd1"``, ``"sdxl"``, ``"flux"``...; for VAEs
    and TAESDs the latent family, for upscalers ``"esrgan"``) or ``"unknown"``.
    ``variant`` refines it (``"inpaint"``, ``"tiny"``, ``"unet_only"``...). ``error`` is
    set (and the architecture is ``"unknown"``) when the file is unreadable or corrupt.
    """

    architecture: str = UNKNOWN
    variant: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "variant": self.variant,
                "details": self.details, "error": self.error}


Tensors = dict[str, TensorInfo]
_Verdict = tuple[str, str | None, dict[str, Any]]


# --------------------------------------------------------------------------- helpers

def _shape(tensors: Tensors, name: str) -> tuple[int, ...] | None:
    info = tensors.get(name)
    return info.shape if info is not None else None


def _dim(tensors: Tensors, name: str, index: int) -> int | None:
    """One dimension of a tensor's shape, ``None`` if the tensor or the dimension is missing."""
    shape = _shape(tensors, name)
    if not shape:
        return None
    try:
        return shape[index]
    except IndexError:
        return None


def _first_dim(tensors: Tensors, names: Iterable[str], index: int) -> int | None:
    for name in names:
        value = _dim(tensors, name, index)
        if value is not None:
            return value
    return None


def _any(names: Iterable[str], needle: str) -> bool:
    return any(needle in n for n in names)


def _common_prefix(names: list[str], candidates: tuple[str, ...]) -> str:
    for prefix in candidates:
        if any(n.startswith(prefix) for n in names):
            return prefix
    return ""


# --------------------------------------------------------------------------- checkpoints

#: Prefixes under which the denoiser's tensors live (checkpoints, ComfyUI, diffusers).
_DM_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "unet.")
#: How a denoiser's tensor names start once the prefix is stripped (UNets and DiTs).
_DM_STARTS = ("input_blocks.", "down_blocks.", "middle_block.", "double_blocks.", "single_blocks.",
              "joint_blocks.", "transformer_blocks.", "single_transformer_blocks.", "blocks.0.cross_attn.",
              "layers.0.adaLN_sa_ln.", "cap_embedder.", "img_in.", "nerf_final_layer_conv.", "conv_in.",
              "double_stream_modulation_img.")
_CLIP_MARKERS = ("cond_stage_model.", "conditioner.embedders.", "te.", "text_encoders.", "text_model.",
                 "text_encoder.", "clip_l.", "clip_g.", "t5xxl.")
_VAE_MARKERS = ("first_stage_model.", "vae.")

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

_CONTEXT_TO_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl_refiner"}


def _strip_dm(names: list[str]) -> tuple[str, list[str]]:
    """The denoiser prefix in use and the denoiser's tensor names without it (all names
    when there is no prefix: a bare diffusion model file)."""
    for prefix in _DM_PREFIXES:
        stripped = [n[len(prefix):] for n in names if n.startswith(prefix)]
        if stripped:
            return prefix, stripped
    return "", names


def _has_denoiser(dm: list[str]) -> bool:
    return any(n.startswith(_DM_STARTS) for n in dm)


def _context_dim(tensors: Tensors, prefix: str) -> int | None:
    """Cross-attention context dim: the 'in' side of any attn2.to_k weight ([inner, context])."""
    for name, info in tensors.items():
        if name.startswith(prefix) and name.endswith("attn2.to_k.weight") and info.shape and len(info.shape) == 2:
            return info.shape[1]
    return None


def _text_hidden(tensors: Tensors) -> int | None:
    """Width of the (first) CLIP text encoder, from its token embedding (get_sd_version's check)."""
    return _first_dim(tensors, (
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "cond_stage_model.model.token_embedding.weight",
        "text_model.embeddings.token_embedding.weight",
        "te.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.0.model.token_embedding.weight",
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    ), -1)


def _classify_unet(tensors: Tensors, prefix: str, dm: set[str], details: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    multiple_encoders = _any(names, "conditioner.embedders.1") or _any(names, "cond_stage_model.1") or any(
        n.startswith("te.1") for n in names)
    context = _context_dim(tensors, prefix)
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
    elif context in _CONTEXT_TO_ARCH:
        arch = _CONTEXT_TO_ARCH[context]
    elif hidden == 768:
        arch = "sd1"
    elif hidden == 1024:
        arch = "sd2"
    else:
        return UNKNOWN, None, details

    in_channels = _first_dim(tensors, (prefix + _UNET_FIRST_CONV[0], prefix + _UNET_FIRST_CONV[1]), 1)
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
            attn = _dim(tensors, prefix + "output_blocks.7.1.transformer_blocks.0.attn1.to_k.weight", -1)
            variant = "sdxs" if attn == 1024 else "tiny"
        elif arch == "sdxl":
            variant = "ssd1b" if has_out_311 else "vega"
    if arch == "sdxl_refiner":
        variant = variant or "refiner"
    return arch, variant, details


def _classify_dit(tensors: Tensors, prefix: str, dm: list[str], details: dict[str, Any]) -> _Verdict | None:
    names = list(tensors)
    for marker, arch, variant in _DIT_MARKERS:
        if any(n.startswith(marker) for n in dm):
            return arch, variant, details
    if any("llm_adapter.blocks.0.cross_attn.q_proj.weight" in n for n in names):
        return "anima", None, details
    if any(n.startswith("double_stream_modulation_img.lin.weight") for n in dm):
        return "flux2", (None if any(n.startswith("single_blocks.47.linear1.weight") for n in dm) else "klein"), details
    if any(n.startswith("blocks.0.cross_attn.norm_k.weight") for n in dm):
        shape = _shape(tensors, prefix + "patch_embedding.weight")
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
        in_features = _dim(tensors, prefix + "img_in.weight", -1)
        if in_features is not None:
            details["in_channels"] = in_features
        variant = {384: "fill", 128: "controls", 196: "flex2"}.get(in_features or 0)
        if variant is None and any("distilled_guidance_layer." in n for n in dm):
            variant = "chroma"
        return "flux", variant, details
    if any(n.startswith("single_transformer_blocks.") for n in dm):  # diffusers Flux
        return "flux", None, details
    return None


def _classify_diffusion(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    prefix, dm = _strip_dm(names)
    components = []
    if _has_denoiser(dm):
        components.append("diffusion_model")
    if any(n.startswith(_CLIP_MARKERS) for n in names):
        components.append("text_encoder")
    if any(n.startswith(_VAE_MARKERS) for n in names):
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


# --------------------------------------------------------------------------- LoRAs

#: LoRA "down" matrices, shaped [rank, in_features] (LoHa's hada_w1_b too).
_LORA_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".hada_w1_b")
#: Any of these marks a file as a LoRA-type network (LoKr has no [rank, in] matrix).
_LORA_MARKERS = _LORA_DOWN_SUFFIXES + (".lokr_w1", ".lokr_w2")


def _lora_in_dim(tensors: Tensors, pattern: re.Pattern[str]) -> int | None:
    """In-features of the first LoRA down matrix whose module name matches ``pattern``."""
    for name, info in tensors.items():
        if name.endswith(_LORA_DOWN_SUFFIXES) and pattern.search(name) and info.shape and len(info.shape) >= 2:
            return info.shape[1]
    return None


_ATTN2_K = re.compile(r"attn2[._]to_k")
_TE_Q = re.compile(r"(lora_te1?_|text_encoder\.|te1?\.)text_model[._]encoder[._]layers[._]\d+[._]self_attn[._](q|k|v)_proj")
_META_ARCH = (("flux", "flux"), ("sd3", "sd3"), ("stable-diffusion-3", "sd3"), ("xl", "sdxl"), ("sd_v2", "sd2"), ("v2", "sd2"),
              ("sd_v1", "sd1"), ("v1", "sd1"))


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


def _classify_lora(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    details: dict[str, Any] = {"lora_format": _lora_format(names)}
    ranks = Counter(info.shape[0] for n, info in tensors.items()
                    if n.endswith(_LORA_DOWN_SUFFIXES[:3]) and info.shape and len(info.shape) >= 2)
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

    unet = re.search(r"(input_blocks|down_blocks|middle_block|mid_block|output_blocks|up_blocks)[._]\d|mid_block",
                     joined)
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
            return _CONTEXT_TO_ARCH[context], None, details
        if te_hidden in (768, 1024):
            return _CONTEXT_TO_ARCH[te_hidden], None, details
    # Keys say nothing decisive: trust the trainer's metadata (kohya/modelspec), if any.
    hint = str(meta.get("modelspec.architecture") or meta.get("ss_base_model_version") or "").lower()
    for needle, arch in _META_ARCH:
        if needle in hint:
            details["source"] = "metadata"
            return arch, None, details
    return UNKNOWN, None, details


# --------------------------------------------------------------------------- VAE / TAESD

#: Latent channels -> (family, checkpoint architectures it pairs with).
_LATENT_FAMILIES: dict[int, tuple[str, list[str]]] = {
    4: ("sd", ["sd1", "sd2", "sdxl"]),
    16: ("sd3_flux", ["sd3", "flux"]),
    32: ("flux2", ["flux2"]),
}


def _classify_vae(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    prefix = _common_prefix(names, ("first_stage_model.", "vae.", ""))
    details: dict[str, Any] = {}
    conv_in = _shape(tensors, prefix + "decoder.conv_in.weight")
    if conv_in is None:
        wan = _shape(tensors, prefix + "decoder.conv1.weight")
        if wan is not None and len(wan) == 5:  # Wan/Qwen-Image causal 3-D VAE
            details["latent_channels"] = wan[1]
            return ("wan2.2" if wan[1] == 48 else "wan"), None, details
        return UNKNOWN, None, details
    if len(conv_in) != 4:
        return UNKNOWN, None, details
    channels = conv_in[1]
    details["latent_channels"] = channels
    if not any(n.startswith(prefix + "encoder.") for n in names):
        details["decoder_only"] = True
    family = _LATENT_FAMILIES.get(channels)
    if family is None:
        return UNKNOWN, None, details
    details["compatible"] = family[1]
    if channels == 4:
        details["note"] = "SD1/SD2 and SDXL VAEs share a layout; the file cannot tell them apart"
    elif channels == 16:
        details["note"] = "SD3 and Flux VAEs share a layout; the file cannot tell them apart"
    return family[0], None, details


def _classify_taesd(tensors: Tensors, meta: dict[str, Any], filename: str) -> _Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    prefix = _common_prefix(names, ("first_stage_model.", "vae.", "taesd.", ""))
    # The decoder's first conv reads the latents: the lowest-numbered 4-D conv weight.
    decoder = []
    for name, info in tensors.items():
        m = re.fullmatch(re.escape(prefix) + r"decoder\.layers\.(\d+)\.weight", name)
        if m and info.shape and len(info.shape) == 4:
            decoder.append((int(m.group(1)), info.shape[1]))
    channels = min(decoder)[1] if decoder else None
    if channels is None:  # encoder-only file: the last conv writes the latents
        encoder = []
        for name, info in tensors.items():
            m = re.fullmatch(re.escape(prefix) + r"encoder\.layers\.(\d+)\.weight", name)
            if m and info.shape and len(info.shape) == 4:
                encoder.append((int(m.group(1)), info.shape[0]))
        channels = max(encoder)[1] if encoder else None
    if channels is None:
        return UNKNOWN, None, details
    details["latent_channels"] = channels
    family = _LATENT_FAMILIES.get(channels)
    if family is not None:
        details["compatible"] = family[1]
    lower = filename.lower()
    if channels == 4:
        # taesd and taesdxl differ only in weights; the file name is the only hint.
        if "xl" in lower:
            details["source"] = "filename"
            return "taesdxl", None, details
        details["note"] = "taesd and taesdxl share a layout; assumed taesd unless the name says xl"
        return "taesd", None, details
    if channels == 16:
        if "sd3" in lower:
            details["source"] = "filename"
            return "taesd3", None, details
        if "f1" in lower or "flux" in lower:
            details["source"] = "filename"
            return "taef1", None, details
        details["note"] = "taesd3 and taef1 share a layout"
        return "taesd3_f1", None, details
    if channels == 32:
        return "taef2", None, details
    return UNKNOWN, None, details


# --------------------------------------------------------------------------- upscalers

def _classify_upscaler(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
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
        features = _dim(tensors, "model.0.weight", 0)
    elif "conv_first.weight" in tensors:  # BasicSR / Real-ESRGAN layout
        blocks = [int(m.group(1)) for n in names if (m := re.match(r"body\.(\d+)\.rdb", n))]
        if not blocks:
            return UNKNOWN, None, details
        scale = 4 if "conv_up2.weight" in tensors else 2 if "conv_up1.weight" in tensors else 1
        details.update(layout="basicsr", num_blocks=max(blocks) + 1, scale=scale)
        features = _dim(tensors, "conv_first.weight", 0)
    else:
        return UNKNOWN, None, details
    if features is not None:
        details["num_features"] = features
    return "esrgan", None, details


# --------------------------------------------------------------------------- others

def _classify_controlnet(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    if any(n.startswith("controlnet_blocks.") or n.startswith("controlnet_single_blocks.") for n in names) and any(
            re.match(r"(transformer_blocks|single_transformer_blocks|double_blocks)\.\d", n) for n in names):
        return "flux", None, details
    prefix = _common_prefix(names, ("control_model.", ""))
    is_control = prefix == "control_model." or any(
        n.startswith(("controlnet_", "input_hint_block.", "zero_convs.")) for n in names)
    if not is_control:
        return UNKNOWN, None, details
    context = _context_dim(tensors, prefix)
    if context is not None:
        details["context_dim"] = context
        if context in _CONTEXT_TO_ARCH:
            return _CONTEXT_TO_ARCH[context], None, details
    if any("add_embedding" in n or "label_emb" in n for n in names):
        return "sdxl", None, details
    return UNKNOWN, None, details


_EMBEDDING_WIDTH = {768: "sd1", 1024: "sd2"}


def _classify_embedding(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    details: dict[str, Any] = {}
    clip_l, clip_g = _shape(tensors, "clip_l"), _shape(tensors, "clip_g")
    if clip_g is not None:
        details["vectors"] = clip_g[0] if clip_g else None
        return "sdxl", None, details
    for name in ("emb_params", *(n for n in tensors if n.startswith("string_to_param."))):
        shape = _shape(tensors, name)
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


def _classify_text_encoder(tensors: Tensors, meta: dict[str, Any]) -> _Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    llm_arch = meta.get("general.architecture")
    clip_width = _first_dim(tensors, [n for n in names if n.endswith("token_embedding.weight")], -1)
    if clip_width is not None:
        details["hidden_size"] = clip_width
        arch = {768: "clip_l", 1024: "clip_h", 1280: "clip_g"}.get(clip_width, UNKNOWN)
        return arch, None, details
    shared = _shape(tensors, "shared.weight") or _shape(tensors, "encoder.embed_tokens.weight")
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


def guess_kind(tensors: Tensors) -> str | None:
    """What kind of file the tensors look like, regardless of its folder (for mismatch hints)."""
    names = list(tensors)
    if not names:
        return None
    if any(n.startswith(("lora_unet_", "lora_te")) or n.endswith(_LORA_MARKERS) or ".lora_B." in n
           or n.endswith(".lora_up.weight") for n in names):
        return "lora"
    if "emb_params" in tensors or "clip_g" in tensors or any(n.startswith("string_to_param.") for n in names):
        return "embedding"
    if any(n.startswith(("control_model.", "controlnet_", "input_hint_block.")) for n in names):
        return "controlnet"
    if "model.0.weight" in tensors and any(n.startswith("model.1.sub.") for n in names) or (
            "conv_first.weight" in tensors and any(n.startswith("body.") for n in names)):
        return "esrgan"
    _prefix, dm = _strip_dm(names)
    if _has_denoiser(dm):
        clip = any(n.startswith(_CLIP_MARKERS) for n in names)
        vae = any(n.startswith(_VAE_MARKERS) for n in names)
        return "checkpoint" if clip or vae else "diffusion_model"
    if any(re.match(r"(\w+\.)?decoder\.layers\.\d", n) for n in names):
        return "taesd"
    if any(n.endswith("decoder.conv_in.weight") or n.endswith("decoder.conv1.weight") for n in names):
        return "vae"
    if any(n.endswith("token_embedding.weight") or n.startswith(("encoder.block.", "model.layers.", "blk."))
           for n in names):
        return "text_encoder"
    return None


# --------------------------------------------------------------------------- entry points

def _classifier(model_type: ModelType, filename: str) -> Callable[[Tensors, dict[str, Any]], _Verdict] | None:
    if model_type in (ModelType.CHECKPOINT, ModelType.DIFFUSION_MODEL):
        return _classify_diffusion
    if model_type == ModelType.LORA:
        return _classify_lora
    if model_type == ModelType.VAE:
        return _classify_vae
    if model_type == ModelType.TAESD:
        return lambda t, m: _classify_taesd(t, m, filename)
    if model_type in (ModelType.ESRGAN, ModelType.UPSCALER):
        return _classify_upscaler
    if model_type == ModelType.CONTROLNET:
        return _classify_controlnet
    if model_type == ModelType.EMBEDDING:
        return _classify_embedding
    if model_type == ModelType.TEXT_ENCODER:
        return _classify_text_encoder
    return None


def header_summary(header: Header) -> dict[str, Any]:
    """Format, tensor count, parameters and dtypes of a header, with its metadata (for listings
    and `sdrest metadata`)."""
    dtypes = Counter(info.dtype or "unknown" for info in header.tensors.values())
    details: dict[str, Any] = {
        "format": header.format,
        "tensors": len(header.tensors),
        # Unknown (None) when a names-only pickle gave no shapes, rather than a wrong 0.
        "parameters": (None if any(info.shape is None for info in header.tensors.values())
                       else sum(info.numel for info in header.tensors.values())),
        "dtypes": dict(dtypes.most_common()),
    }
    details.update(header.details)
    if header.metadata:
        details["metadata"] = header.metadata
    return details


def classify(header: Header, model_type: ModelType, filename: str = "") -> Detection:
    """Classify an already-read header as a file of ``model_type``."""
    details = header_summary(header)
    kind = guess_kind(header.tensors)
    if kind is not None:
        details["kind"] = kind
    classifier = _classifier(model_type, filename)
    if classifier is None or not header.tensors:
        return Detection(UNKNOWN, None, details, None if header.tensors else "no tensors in file")
    arch, variant, extra = classifier(header.tensors, header.metadata)
    details.update(extra)
    return Detection(arch, variant, details)


def _detect_text(path: Path, model_type: ModelType) -> Detection:
    """Presets and prompt templates: 'detection' is validation (so the UI can flag bad files)."""
    from sdrest.models import presets  # local: keeps detect importable without YAML users

    try:
        if model_type == ModelType.PRESETS:
            preset = presets.load_preset(path)
            return Detection("preset", None, {"fields": sorted(preset)})
        template = presets.load_template(path)
        return Detection("template", None, {"has_placeholder": presets.PLACEHOLDER in template.template,
                                            "description": template.description})
    except (ValueError, OSError) as exc:
        return Detection(UNKNOWN, None, {}, str(exc))


def detect(path: Path, model_type: ModelType) -> Detection:
    """Detect the architecture of ``path`` as a file of ``model_type``. Never raises for bad
    files: unreadable or corrupt ones give architecture ``"unknown"`` with ``error`` set."""
    path = Path(path)
    if not model_type.is_weights:
        return _detect_text(path, model_type)
    try:
        header = read_header(path)
    except HeaderError as exc:
        return Detection(UNKNOWN, None, {}, str(exc))
    except (OSError, MemoryError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return Detection(UNKNOWN, None, {}, f"unreadable file ({reason})")
    try:
        return classify(header, model_type, path.name)
    except Exception as exc:  # noqa: BLE001 - a classifier bug must not break a whole listing
        return Detection(UNKNOWN, None, header_summary(header), f"classification failed ({type(exc).__name__}: {exc})")
