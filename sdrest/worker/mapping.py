"""A job's stored parameters as the engine's parameter structs, through the tables beside the
request fields (:data:`~sdrest.jobs.engine_fields.IMAGE_FIELDS`, ``MODEL_OPTIONS``): a new
request field needs a table row, not code here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


def image_gen_params(
    params: dict[str, Any], open_image: Callable[[str], Image.Image], control_image: Image.Image | None = None
) -> Any:
    """The :class:`~sdrest.engine.ImageGenParams` of a generation job. ``open_image`` opens a
    saved input by its stored path; ``control_image`` replaces the stored one (preprocessed)."""
    from sdrest.engine import ImageGenParams

    def value_of(key: str, value: Any) -> Any:
        if key in IMAGE_INPUTS:
            return control_image if key == "control_image" and control_image is not None else open_image(value)
        if key in IMAGE_LISTS:
            return [open_image(path) for path in value]
        return loras(value) if key == "loras" else value

    return fill(ImageGenParams(), IMAGE_FIELDS, params, value_of)


def fill(
    built: Any, table: Mapping[str, str | tuple[str, ...]], params: dict[str, Any], value_of: Callable[[str, Any], Any]
) -> Any:
    """Write every job parameter that ``table`` names into ``built`` at its dotted path(s) and
    return ``built``. ``value_of(key, value)`` turns a stored value into the engine's (a saved
    image's path into the image); an object given switches its feature on (hires, vae_tiling)."""
    for key, value in flatten(params):
        targets = table.get(key)
        if targets is None or value is None:
            continue
        value = True if isinstance(value, dict) else value_of(key, value)
        for target in (targets,) if isinstance(targets, str) else targets:
            set_path(built, target, value)
    return built


def loras(entries: list[dict[str, Any]]) -> list[Any]:
    """A job's stored LoRAs (``{"path", "weight", "high_noise"?}``) as the engine's."""
    from sdrest.engine import Lora

    return [
        Lora(path=entry["path"], multiplier=float(entry["weight"]), is_high_noise=bool(entry.get("high_noise")))
        for entry in entries
    ]


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
    return ContextParams(
        model_path=model.get("path"), n_threads=threads, vae_decode_only=False, embeddings=embeddings or None, **options
    )
