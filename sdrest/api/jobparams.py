"""Turn validated request fields into a job's stored parameters.

Input images are decoded here (in the HTTP thread), resized to the requested size when they
differ, and saved as PNG under ``<data-dir>/inputs/<id>/`` so a queued job survives a server
restart. Names of models and LoRAs are resolved now, so a typo is a 404 at once rather than a
failed job later. A seed of -1 becomes a real random seed, reported with the job.
"""

from __future__ import annotations

import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from sdrest.api.errors import ApiError
from sdrest.api.fields import CONTROL_FIELDS
from sdrest.api.image_input import ImageInputError, ImageLimits, decode_image, fit_to
from sdrest.models.paths import InvalidModelName, ModelNotFoundError, resolve_model
from sdrest.settings import Settings

#: Random seeds stay in the int32 range every client parses.
MAX_RANDOM_SEED = 2**31 - 1
INPUTS = "inputs"


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(max_bytes=int(settings.max_image_mb * 2**20), max_pixels=settings.max_image_pixels,
                       url_timeout=settings.url_timeout, url_policy=settings.url_fetch)


class InputFiles:
    """The saved input images of one request (removed again if the request fails)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.relative = f"{INPUTS}/{uuid.uuid4().hex}"
        self.directory = settings.data_dir / self.relative
        self.saved = False

    def save(self, image: Image.Image, name: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.saved = True
        image.save(self.directory / f"{name}.png", format="PNG")
        return f"{self.relative}/{name}.png"

    def discard(self) -> None:
        if self.saved:
            shutil.rmtree(self.directory, ignore_errors=True)


def decode(value: Any, field: str, settings: Settings) -> Image.Image:
    try:
        return decode_image(value, field, image_limits(settings))
    except ImageInputError as exc:
        raise ApiError(exc.status, exc.code, str(exc), exc.field) from None


def generation_params(values: dict[str, Any], mode: str, settings: Settings, inputs: InputFiles,
                      default_model: str | None) -> dict[str, Any]:
    """The stored parameters of a txt2img/img2img/inpaint job."""
    params = {k: v for k, v in values.items() if k not in CONTROL_FIELDS}
    params["mode"] = mode
    if mode != "txt2img" and "init_image" not in params:
        raise ApiError(422, "missing_field", "init_image: required for " + mode, "init_image")
    if mode == "inpaint" and "mask_image" not in params:
        raise ApiError(422, "missing_field", "mask_image: required for inpainting", "mask_image")
    if mode == "txt2img" and not params.get("prompt", "").strip():
        raise ApiError(422, "missing_field", "prompt: required", "prompt")

    if params.get("model"):
        _resolve(settings.checkpoints_dir, params["model"], "model")
    elif default_model is None:
        raise ApiError(409, "no_model_loaded",
                       "no model is loaded: name one in 'model', load one, or start the server with --model",
                       "model")
    seed = params.get("seed", -1)
    params["seed"] = secrets.randbelow(MAX_RANDOM_SEED + 1) if seed < 0 else seed
    params.setdefault("batch_count", 1)

    params["loras"] = [
        {"name": lora["name"], "weight": lora.get("weight", 1.0),
         "path": str(_resolve(settings.models_dir / "lora", lora["name"], f"loras[{index}].name"))}
        for index, lora in enumerate(params.get("loras", []))
        if _require(lora, "name", f"loras[{index}]")
    ]

    if "init_image" in params:
        init = decode(params["init_image"], "init_image", settings)
        width = params.setdefault("width", _aligned(init.width))
        height = params.setdefault("height", _aligned(init.height))
        params["init_image"] = inputs.save(fit_to(init.convert("RGB"), width, height), "init_image")
    if "mask_image" in params:
        mask = decode(params["mask_image"], "mask_image", settings)
        params["mask_image"] = inputs.save(fit_to(mask.convert("L"), params["width"], params["height"]), "mask_image")
    if "control_image" in params:
        control = decode(params["control_image"], "control_image", settings)
        width, height = params.get("width", 512), params.get("height", 512)
        params["control_image"] = inputs.save(fit_to(control.convert("RGB"), width, height), "control_image")
    if "ref_images" in params:
        params["ref_images"] = [
            inputs.save(decode(item, f"ref_images[{i}]", settings).convert("RGB"), f"ref_image_{i}")
            for i, item in enumerate(params["ref_images"])
        ]
    if inputs.saved:
        params["_inputs"] = inputs.relative
    return params


def upscale_params(values: dict[str, Any], settings: Settings, inputs: InputFiles) -> dict[str, Any]:
    """The stored parameters of an ESRGAN upscale job."""
    params = {k: v for k, v in values.items() if k not in CONTROL_FIELDS}
    params["mode"] = "upscale"
    for required in ("image", "upscaler"):
        if required not in params:
            raise ApiError(422, "missing_field", f"{required}: required", required)
    params["upscaler_path"] = str(_resolve_upscaler(settings, params["upscaler"]))
    image = decode(params["image"], "image", settings)
    params["image"] = inputs.save(image.convert("RGB"), "image")
    params["_inputs"] = inputs.relative
    return params


def _resolve_upscaler(settings: Settings, name: str) -> Path:
    for folder in ("esrgan", "upscaler"):
        try:
            return _resolve(settings.models_dir / folder, name, "upscaler")
        except ApiError as exc:
            if exc.status != 404:
                raise
    raise ApiError(404, "model_not_found", f"upscaler: no upscaler named {name!r}", "upscaler")


def _resolve(root: Path, name: str, field: str) -> Path:
    """A model file by name: 400 for a name that tries to leave its folder, 404 if absent."""
    try:
        return resolve_model(root, name, field)
    except InvalidModelName as exc:
        raise ApiError(400, "invalid_name", str(exc), field) from None
    except ModelNotFoundError as exc:
        raise ApiError(404, "model_not_found", str(exc), field) from None


def _require(values: dict[str, Any], key: str, field: str) -> bool:
    if key not in values:
        raise ApiError(422, "missing_field", f"{field}.{key}: required", f"{field}.{key}")
    return True


def _aligned(size: int) -> int:
    """An input image's size as a valid generation size: a multiple of 8, 64..4096."""
    return max(64, min(4096, size - size % 8))
