"""VAEs and TAESDs: the latent family they decode (and which checkpoints they pair with)."""

from __future__ import annotations

import re
from typing import Any

from sdrest.models.families.common import UNKNOWN, Tensors, Verdict, common_prefix, shape_of

#: Latent channels -> (family, checkpoint architectures it pairs with).
_LATENT_FAMILIES: dict[int, tuple[str, list[str]]] = {
    4: ("sd", ["sd1", "sd2", "sdxl"]),
    16: ("sd3_flux", ["sd3", "flux"]),
    32: ("flux2", ["flux2"]),
}


def classify_vae(tensors: Tensors, meta: dict[str, Any]) -> Verdict:
    names = list(tensors)
    prefix = common_prefix(names, ("first_stage_model.", "vae.", ""))
    details: dict[str, Any] = {}
    conv_in = shape_of(tensors, prefix + "decoder.conv_in.weight")
    if conv_in is None:
        wan = shape_of(tensors, prefix + "decoder.conv1.weight")
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


def classify_taesd(tensors: Tensors, meta: dict[str, Any], filename: str) -> Verdict:
    names = list(tensors)
    details: dict[str, Any] = {}
    prefix = common_prefix(names, ("first_stage_model.", "vae.", "taesd.", ""))
    # The decoder's first conv reads the latents: the lowest-numbered 4-D conv weight.
    decoder = _conv_layers(tensors, prefix + "decoder", 1)
    channels = min(decoder)[1] if decoder else None
    if channels is None:  # encoder-only file: the last conv writes the latents
        encoder = _conv_layers(tensors, prefix + "encoder", 0)
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


def _conv_layers(tensors: Tensors, part: str, dim: int) -> list[tuple[int, int]]:
    """(layer number, shape[dim]) of each 4-D conv weight ``<part>.layers.<n>.weight``."""
    layers = []
    for name, info in tensors.items():
        m = re.fullmatch(re.escape(part) + r"\.layers\.(\d+)\.weight", name)
        if m and info.shape and len(info.shape) == 4:
            layers.append((int(m.group(1)), info.shape[dim]))
    return layers
