"""What a generation really ran with: the library's defaults resolved to names, and the model
named and hashed. Jobs record these, image metadata and the A1111 infotext show them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrest.models.detect import detect
from sdrest.models.hashing import HashCache, short_hash
from sdrest.models.types import ModelType

#: Families whose text encoders skip 2 CLIP layers when clip_skip is left to the library;
#: other CLIP-based families skip 1 (stable-diffusion.cpp, conditioner.hpp).
CLIP_SKIP_2 = ("sd2", "sdxl", "sdxl_refiner", "sd3")
CLIP_SKIP_1 = ("sd1",)


class ModelFacts:
    """Per model file (cached by path): its architecture and A1111 short hash.

    The hash comes from the server's hash cache (``<data-dir>/hashes.sqlite3``, keyed by path,
    size and modification time), computed once per file the first time it is used.
    """

    def __init__(self, hash_database: Path) -> None:
        self.hash_database = hash_database
        self._facts: dict[str, tuple[str, str]] = {}

    def of(self, path: str) -> tuple[str, str]:
        """``(architecture, short_hash)`` of a checkpoint or diffusion model file."""
        if path not in self._facts:
            architecture = detect(Path(path), ModelType.CHECKPOINT).architecture
            with HashCache(self.hash_database) as cache:
                digest = cache.get_or_compute(Path(path))
            self._facts = {path: (architecture, short_hash(digest))}  # the model in use only
        return self._facts[path]


def resolve(
    params: dict[str, Any], context: Any, model: dict[str, Any], facts: ModelFacts, default_cfg: float
) -> dict[str, Any]:
    """The values that applied: ``model`` (never null), ``model_hash``, ``sampler``,
    ``scheduler``, ``cfg_scale`` and ``clip_skip`` (null for models without a CLIP skip)."""
    path = model.get("path") or (model.get("options") or {}).get("diffusion_model_path")
    architecture, model_hash = facts.of(path) if path else ("unknown", None)
    sampler = params.get("sampler") or context.default_sample_method()
    scheduler = params.get("scheduler") or context.default_scheduler(sampler)
    clip_skip = params.get("clip_skip")
    if clip_skip is None or clip_skip <= 0:
        clip_skip = 2 if architecture in CLIP_SKIP_2 else 1 if architecture in CLIP_SKIP_1 else None
    cfg_scale = params.get("cfg_scale")
    return {
        "model": model.get("name"),
        "model_hash": model_hash,
        "sampler": sampler,
        "scheduler": scheduler,
        "cfg_scale": default_cfg if cfg_scale is None else cfg_scale,
        "clip_skip": clip_skip,
    }
