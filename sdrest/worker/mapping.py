"""A job's stored parameters as the engine's parameter structs, through the tables beside the
request fields (:data:`~sdrest.jobs.engine_fields.IMAGE_FIELDS`, ``MODEL_OPTIONS``): a new
request field needs a table row, not code here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PIL import Image

from sdrest.jobs.engine_fields import IMAGE_FIELDS

#: Job parameters that hold saved input images (paths under the data folder).
IMAGE_INPUTS = ("init_image", "mask_image", "control_image")
IMAGE_LISTS = ("ref_images", "pm_id_images")


def flatten(params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(key, value)`` of the job's parameters, nested objects as ``hires`` (the object) and
    ``hires.scale`` (each field), as :data:`IMAGE_FIELDS` names them."""
    for key, value in params.items():
        yield key, value
        if isinstance(value, dict):
            for inner, item in value.items():
                yield f"{key}.{inner}", item


def image_gen_params(params: dict[str, Any], open_image: Callable[[str], Image.Image],
                     control_image: Image.Image | None = None) -> Any:
    """The :class:`~sdrest.engine.ImageGenParams` of a generation job. ``open_image`` opens a
    saved input by its stored path; ``control_image`` replaces the stored one (preprocessed)."""
    from sdrest.engine import ImageGenParams, Lora

    built = ImageGenParams()
    for key, value in flatten(params):
        targets = IMAGE_FIELDS.get(key)
        if targets is None or value is None:
            continue
        if isinstance(value, dict):
            value = True  # an object given switches its feature on (hires, vae_tiling)
        elif key in IMAGE_INPUTS:
            value = control_image if key == "control_image" and control_image is not None else open_image(value)
        elif key in IMAGE_LISTS:
            value = [open_image(path) for path in value]
        elif key == "loras":
            value = [Lora(path=lora["path"], multiplier=float(lora["weight"])) for lora in value]
        for target in (targets,) if isinstance(targets, str) else targets:
            set_path(built, target, value)
    return built


def set_path(root: Any, dotted: str, value: Any) -> None:
    """``set_path(params, "sample_params.guidance.txt_cfg", 7.0)``."""
    *parents, name = dotted.split(".")
    target = root
    for parent in parents:
        target = getattr(target, parent)
    if not hasattr(target, name):
        raise AttributeError(f"{type(target).__name__} has no field {name!r} ({dotted})")
    setattr(target, name, value)


def context_params(model: dict[str, Any], threads: int) -> Any:
    """The :class:`~sdrest.engine.ContextParams` of a model spec ({"path", "options"}) as the
    supervisor sends it: the options are ContextParams fields (``MODEL_OPTIONS`` targets)."""
    from sdrest.engine import ContextParams, Embedding

    options = dict(model.get("options") or {})
    embeddings = [Embedding(name=e["name"], path=e["path"]) for e in options.pop("embeddings", [])]
    # img2img and inpainting need the VAE encoder, so it is always loaded.
    return ContextParams(model_path=model.get("path"), n_threads=threads, vae_decode_only=False,
                         embeddings=embeddings or None, **options)
