"""Which architecture a model file is for, from its tensor names and a few shapes.

Why: users drop files into folders with names like ``model (3).safetensors``; the UI
must still say "SDXL checkpoint" or "Flux LoRA", and the server can refuse an SD1 LoRA
on an SDXL checkpoint before spending a minute loading it. Only headers are read (see
:mod:`sdrest.models.headers`), so detecting a 20 GB file costs a few KB of I/O.

This module is the driver: it reads the header, guesses what kind of file the tensors look
like, and hands them to the rules of the file's model type in :mod:`sdrest.models.families`
(checkpoints and diffusion models, LoRAs, VAEs and TAESDs, the other components).

Nothing here raises for a bad file: :func:`detect` returns architecture ``"unknown"``
with ``error`` set, because one corrupt download must not break a library listing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrest.models.families.common import UNKNOWN, Tensors, Verdict
from sdrest.models.families.components import (
    classify_controlnet,
    classify_embedding,
    classify_text_encoder,
    classify_upscaler,
)
from sdrest.models.families.diffusion import CLIP_MARKERS, VAE_MARKERS, classify_diffusion, has_denoiser, strip_dm
from sdrest.models.families.latent import classify_taesd, classify_vae
from sdrest.models.families.lora import LORA_MARKERS, classify_lora
from sdrest.models.headers import Header, HeaderError, read_header
from sdrest.models.types import ModelType

__all__ = ["UNKNOWN", "Detection", "classify", "detect", "guess_kind", "header_summary"]


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
        return {
            "architecture": self.architecture,
            "variant": self.variant,
            "details": self.details,
            "error": self.error,
        }


def guess_kind(tensors: Tensors) -> str | None:
    """What kind of file the tensors look like, regardless of its folder (for mismatch hints)."""
    names = list(tensors)
    if not names:
        return None
    if any(
        n.startswith(("lora_unet_", "lora_te")) or n.endswith((*LORA_MARKERS, ".lora_up.weight")) or ".lora_B." in n
        for n in names
    ):
        return "lora"
    if "emb_params" in tensors or "clip_g" in tensors or any(n.startswith("string_to_param.") for n in names):
        return "embedding"
    if any(n.startswith(("control_model.", "controlnet_", "input_hint_block.")) for n in names):
        return "controlnet"
    if ("model.0.weight" in tensors and any(n.startswith("model.1.sub.") for n in names)) or (
        "conv_first.weight" in tensors and any(n.startswith("body.") for n in names)
    ):
        return "esrgan"
    _prefix, dm = strip_dm(names)
    if has_denoiser(dm):
        clip = any(n.startswith(CLIP_MARKERS) for n in names)
        vae = any(n.startswith(VAE_MARKERS) for n in names)
        return "checkpoint" if clip or vae else "diffusion_model"
    if any(re.match(r"(\w+\.)?decoder\.layers\.\d", n) for n in names):
        return "taesd"
    if any(n.endswith(("decoder.conv_in.weight", "decoder.conv1.weight")) for n in names):
        return "vae"
    if any(
        n.endswith("token_embedding.weight") or n.startswith(("encoder.block.", "model.layers.", "blk.")) for n in names
    ):
        return "text_encoder"
    return None


def _classifier(model_type: ModelType, filename: str) -> Callable[[Tensors, dict[str, Any]], Verdict] | None:
    if model_type in (ModelType.CHECKPOINT, ModelType.DIFFUSION_MODEL):
        return classify_diffusion
    if model_type == ModelType.LORA:
        return classify_lora
    if model_type == ModelType.VAE:
        return classify_vae
    if model_type == ModelType.TAESD:
        return lambda t, m: classify_taesd(t, m, filename)
    if model_type in (ModelType.ESRGAN, ModelType.UPSCALER):
        return classify_upscaler
    if model_type == ModelType.CONTROLNET:
        return classify_controlnet
    if model_type == ModelType.EMBEDDING:
        return classify_embedding
    if model_type == ModelType.TEXT_ENCODER:
        return classify_text_encoder
    return None


def header_summary(header: Header) -> dict[str, Any]:
    """Format, tensor count, parameters and dtypes of a header, with its metadata (for listings
    and `sdrest metadata`)."""
    dtypes = Counter(info.dtype or "unknown" for info in header.tensors.values())
    details: dict[str, Any] = {
        "format": header.format,
        "tensors": len(header.tensors),
        # Unknown (None) when a names-only pickle gave no shapes, rather than a wrong 0.
        "parameters": (
            None
            if any(info.shape is None for info in header.tensors.values())
            else sum(info.numel for info in header.tensors.values())
        ),
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
        return Detection(
            "template",
            None,
            {"has_placeholder": presets.PLACEHOLDER in template.template, "description": template.description},
        )
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
