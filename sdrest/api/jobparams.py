"""Turn validated request fields into a job's stored parameters.

:func:`read_values` validates a body against its request model (:mod:`sdrest.api.schemas`).

Input images are decoded here (in the HTTP thread), resized to the requested size when they
differ, and saved as PNG under ``<data-dir>/inputs/<id>/`` so a queued job survives a server
restart (with the database image store they go to the database before the job is queued: the
worker may be on another machine). Names of models and LoRAs are resolved now, so a typo is a
404 at once rather than a failed job later. A seed of -1 becomes a real random seed, reported
with the job.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from sdrest._native.buildinfo import build_info
from sdrest.api.errors import ApiError
from sdrest.api.image_input import ImageInputError, ImageLimits, decode_image, fit_to
from sdrest.api.schemas.base import RequestModel
from sdrest.api.schemas.generation import CONTROL_FIELDS, MODEL_COMPONENTS, MODEL_OPTIONS, fields_of_other_modes
from sdrest.api.schemas.parsing import parse, values_of
from sdrest.images import ImageStore
from sdrest.models.paths import InvalidModelName, ModelNotFoundError
from sdrest.models.presets import apply_template, load_preset, load_template, parse_lora_tags
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelType
from sdrest.settings import Settings

#: Random seeds stay in the int32 range every client parses.
MAX_RANDOM_SEED = 2**31 - 1
INPUTS = "inputs"


def image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(
        max_bytes=int(settings.max_image_mb * 2**20),
        max_pixels=settings.max_image_pixels,
        url_timeout=settings.url_timeout,
        url_policy=settings.url_fetch,
    )


class InputFiles:
    """The saved input images of one request (removed again if the request fails)."""

    def __init__(self, settings: Settings, images: ImageStore) -> None:
        self.settings = settings
        self.images = images
        self.relative = f"{INPUTS}/{uuid.uuid4().hex}"
        self.directory = settings.data_dir / self.relative
        self.saved = False

    def save(self, image: Image.Image, name: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.saved = True
        image.save(self.directory / f"{name}.png", format="PNG")
        return f"{self.relative}/{name}.png"

    def publish(self) -> None:
        """Hand the saved images to the image store (where any worker reads them): before the
        job is queued."""
        if self.saved:
            self.images.publish_inputs(self.settings.data_dir, self.relative)

    def discard(self) -> None:
        if self.saved:
            self.images.delete_inputs(self.settings.data_dir, self.relative)


def decode(value: Any, field: str, settings: Settings) -> Image.Image:
    try:
        return decode_image(value, field, image_limits(settings))
    except ImageInputError as exc:
        raise ApiError(exc.status, exc.code, str(exc), exc.field) from None


def read_values(
    model: type[RequestModel],
    data: Mapping[str, Any],
    *,
    from_form: bool,
    mode: str | None = None,
    capabilities: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A job request's fields, validated as ``model`` (names the worker reports checked against
    ``capabilities``; fields of another generation ``mode`` refused), as a dict of the given ones."""
    if mode is not None:
        others = fields_of_other_modes(data, mode)
        if others:
            raise ApiError(400, "field_not_allowed", f"{others[0]}: not used by {mode}", others[0])
    body = parse(model, data, from_form=from_form, context={"capabilities": capabilities or {}})
    return values_of(body)


def with_preset(data: dict[str, Any], library: ModelLibrary, default_model: str | None = None) -> dict[str, Any]:
    """The request's fields on top of its ``preset`` (validated together afterwards).

    A ``model`` that names no checkpoint but a model preset (one that binds the model's files,
    as an installed recipe's ``presets/<recipe>.json`` does) selects that preset: the request
    then runs the preset's components and defaults, so a multi-file model is one model name.
    A request naming no model, preset or model file gets ``default_model`` (``--model``) the
    same way when that names a model preset (``sdrest serve --pull RECIPE`` sets it)."""
    name = data.get("preset")
    model = data.get("model")
    if model is None and name is None and default_model is not None and not _names_model_files(data):
        model = default_model
    if name is None and isinstance(model, str) and (preset := model_preset(library, model)) is not None:
        rest = {k: v for k, v in data.items() if k != "model"}
        return {**preset, **rest}
    if name is None:
        return data
    if not isinstance(name, str):
        raise ApiError(422, "invalid_field", "preset: must be a preset name", "preset")
    preset = _read_preset(find_model(library, ModelType.PRESETS, name, "preset").path, "preset")
    return {**preset, **data}


#: The preset fields that bind a model file: a preset with one of them is a selectable model.
MODEL_FIELDS = ("model", "diffusion_model")


def _names_model_files(data: Mapping[str, Any]) -> bool:
    return any(data.get(field) is not None for field in MODEL_FIELDS)


def model_preset(library: ModelLibrary, name: str) -> dict[str, Any] | None:
    """The fields of the model preset ``name`` (see :func:`with_preset`), or None when ``name`` is
    a checkpoint or no preset that binds a model."""
    try:
        library.find(ModelType.CHECKPOINT, name, "model")
        return None
    except (InvalidModelName, ModelNotFoundError):
        pass
    try:
        path = library.find(ModelType.PRESETS, name, "model").path
    except (InvalidModelName, ModelNotFoundError):
        return None
    preset = _read_preset(path, "model")
    return preset if any(preset.get(field) for field in MODEL_FIELDS) else None


def model_presets(library: ModelLibrary) -> list[Any]:
    """The presets that are models (see :func:`with_preset`) and no checkpoint's name: installed
    recipes, listed beside the checkpoints by the model listings of every API."""
    found = []
    for entry in library.entries(ModelType.PRESETS):
        try:
            if model_preset(library, entry.name) is not None:
                found.append(entry)
        except ApiError:  # a broken preset file: GET /api/v1/presets shows why; no model
            continue
    return found


def _read_preset(path: Path, field: str) -> dict[str, Any]:
    try:
        preset = load_preset(path)
    except ValueError as exc:
        raise ApiError(422, "invalid_preset", f"{field}: {exc}", field) from None
    preset.pop("preset", None)
    return preset


def model_params(values: dict[str, Any], library: ModelLibrary) -> dict[str, Any]:
    """``model``, its resolved path, and the components/options the worker loads with it."""
    model = values.get("model")
    spec: dict[str, Any] = {"model": model, "model_path": None, "model_options": {}}
    if model is not None:
        spec["model_path"] = str(find_model(library, ModelType.CHECKPOINT, model, "model").path)
    for name, (option, folder) in MODEL_COMPONENTS.items():
        if values.get(name) is not None:
            entry = find_model(library, ModelType.from_name(folder), values[name], name)
            spec["model_options"][option] = str(entry.path)
    for name, targets in MODEL_OPTIONS.items():
        if values.get(name) is not None:
            for target in option_targets(targets):
                spec["model_options"][target] = values[name]
    return spec


def option_targets(targets: str | tuple[str, ...]) -> tuple[str, ...]:
    """The context options one request field of ``MODEL_OPTIONS`` sets (one name or several)."""
    return (targets,) if isinstance(targets, str) else targets


def generation_params(
    values: dict[str, Any],
    mode: str,
    settings: Settings,
    inputs: InputFiles,
    default_model: str | None,
    library: ModelLibrary,
) -> dict[str, Any]:
    """The stored parameters of a txt2img/img2img/inpaint job."""
    check_cost(values, settings)
    params = {
        k: v
        for k, v in values.items()
        if k not in CONTROL_FIELDS and k not in MODEL_COMPONENTS and k not in MODEL_OPTIONS
    }
    params["mode"] = mode
    params.update(model_params(values, library))
    for field, folder, negative in (
        ("prompt_template", ModelType.PROMPTS, False),
        ("negative_prompt_template", ModelType.NEG_PROMPTS, True),
    ):
        if values.get(field) is not None:
            template = load_template(find_model(library, folder, values[field], field).path)
            target = "negative_prompt" if negative else "prompt"
            params[target] = apply_template(template.template, params.get(target, ""), negative=negative)
    if mode == "txt2img" and not params.get("prompt", "").strip():
        raise ApiError(422, "missing_field", "prompt: required", "prompt")

    if params["model_path"] is None and "diffusion_model_path" not in params["model_options"] and default_model is None:
        raise ApiError(
            409,
            "no_model_loaded",
            "no model is loaded: name one in 'model', load one, or start the server with --model",
            "model",
        )
    seed = params.get("seed", -1)
    params["seed"] = secrets.randbelow(MAX_RANDOM_SEED + 1) if seed < 0 else seed
    params.setdefault("batch_count", 1)

    requested = [dict(lora) for lora in params.get("loras", [])]
    try:
        params["prompt"], tags = parse_lora_tags(params.get("prompt", ""))
    except ValueError as exc:
        raise ApiError(422, "invalid_field", f"prompt: {exc}", "prompt") from None
    requested += [{"name": name, "weight": weight, "_tag": True} for name, weight in tags]
    params["loras"] = [
        {
            "name": lora["name"],
            "weight": lora.get("weight", 1.0),
            "path": str(
                find_model(
                    library, ModelType.LORA, lora["name"], "prompt" if lora.get("_tag") else f"loras[{index}].name"
                ).path
            ),
        }
        for index, lora in enumerate(requested)
    ]

    check_related_fields(params)
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
        params.setdefault("auto_resize_ref_image", True)  # as sd-cli: resized unless asked not to
    for key in ("ref_images", "pm_id_images"):
        if key in params:
            params[key] = [
                inputs.save(decode(item, f"{key}[{i}]", settings).convert("RGB"), f"{key}_{i}")
                for i, item in enumerate(params[key])
            ]
    resolve_generation_models(params, settings, library)
    if inputs.saved:
        params["_inputs"] = inputs.relative
    return params


#: Steps a request that names none samples (the library's default, as sd-cli's).
DEFAULT_STEPS = 20
#: --max-job-cost when not set, in megapixel-steps: CPU builds (a 512x512 step takes seconds) and
#: GPU builds. 100 is e.g. 1024x1024 x 2 images x 50 steps; 2000 a 81-frame 832x480 video at 50 steps.
DEFAULT_JOB_COST = {"cpu": 100.0, "gpu": 2000.0}


def max_job_cost(settings: Settings) -> float:
    """The most megapixel-steps one job may cost (0: no limit): --max-job-cost, else the build's default."""
    if settings.max_job_cost is not None:
        return settings.max_job_cost
    backends = {str(b).lower() for b in build_info().get("backends", [])}
    return DEFAULT_JOB_COST["gpu" if backends - {"cpu"} else "cpu"]


def check_cost(values: Mapping[str, Any], settings: Settings) -> None:
    """Refuse (422, naming the fields) a job whose compute exceeds the budget: pixels x images
    x steps (a custom sigma schedule counts its own steps), the hires pass and video frames
    counted too. Runs on the request's numbers alone, before any image is decoded."""
    limit = max_job_cost(settings)
    if limit <= 0:
        return
    width, height = values.get("width") or 512, values.get("height") or 512
    sigmas = values.get("sigmas")
    steps = len(sigmas) - 1 if sigmas else values.get("steps") or DEFAULT_STEPS
    images = values.get("video_frames") or values.get("batch_count") or 1
    cost = width * height * images * steps
    terms = [f"{width}x{height}", f"{images} {'frames' if values.get('video_frames') else 'images'}", f"{steps} steps"]
    hires = values.get("hires")
    if isinstance(hires, Mapping) and hires:
        scale = hires.get("scale") or 2
        hires_width = hires.get("width") or round(width * scale)
        hires_height = hires.get("height") or round(height * scale)
        hires_steps = hires.get("steps") or steps
        cost += hires_width * hires_height * images * hires_steps
        terms.append(f"a {hires_width}x{hires_height} hires pass of {hires_steps} steps")
    megapixel_steps = cost / 1e6
    if megapixel_steps > limit:
        given = [
            name
            for name in ("hires", "video_frames", "batch_count", "sigmas" if sigmas else "steps", "width", "height")
            if values.get(name)
        ]
        raise ApiError(
            422,
            "job_too_large",
            f"{', '.join(given) or 'steps'}: this job would cost {megapixel_steps:,.0f} megapixel-steps "
            f"({' x '.join(terms[:3])}{', plus ' + terms[3] if len(terms) > 3 else ''}), more than the "
            f"{limit:g} one job may cost here (--max-job-cost)",
            given[0] if given else "steps",
        )


#: An upscale's result may have this many times --max-image-pixels.
UPSCALE_MAX_FACTOR = 4


def check_related_fields(params: Mapping[str, Any]) -> None:
    """Fields that need another one: checked before any input image is decoded (8 reference
    images of 4096x4096 took seconds to decode before such a 422)."""
    for field in ("pm_id_images", "pm_id_embed"):
        if field in params and "photo_maker_path" not in params["model_options"]:
            raise ApiError(422, "missing_field", f"photo_maker: {field} needs a photo_maker model", "photo_maker")
    if params.get("canny") and "control_image" not in params:
        raise ApiError(422, "missing_field", "control_image: canny preprocesses the control image", "control_image")


def resolve_generation_models(params: dict[str, Any], settings: Settings, library: ModelLibrary) -> None:
    """Model files a generation names besides its checkpoint: the hires model upscaler, the
    upscaler run afterwards, the PhotoMaker id embedding (names in, server paths stored)."""
    hires = params.get("hires")
    if isinstance(hires, dict):
        if hires.get("model") is not None:
            hires["model_path"] = str(_resolve_upscaler(library, hires["model"], "hires.model"))
            hires.setdefault("upscaler", "Model")
        elif str(hires.get("upscaler", "")).lower() == "model":
            raise ApiError(
                422, "missing_field", "hires.model: upscaler 'Model' needs the ESRGAN model to use", "hires.model"
            )
    if params.get("upscale_model") is not None:
        params["upscale_model_path"] = str(_resolve_upscaler(library, params["upscale_model"], "upscale_model"))
        # Bounded like POST /upscale, for the usual x4 model: factor 4 per repeat.
        factor = 4 ** params.get("upscale_repeats", 1)
        width, height = params.get("width", 512) * factor, params.get("height", 512) * factor
        if width * height > UPSCALE_MAX_FACTOR * settings.max_image_pixels:
            raise ApiError(
                422,
                "invalid_field",
                f"upscale_repeats: the result would be {width}x{height} pixels; "
                f"at most {UPSCALE_MAX_FACTOR * settings.max_image_pixels} (4 x --max-image-pixels)",
                "upscale_repeats",
            )
    if params.get("pm_id_embed") is not None:
        params["pm_id_embed_path"] = str(
            find_model(library, ModelType.CONTROLNET, params["pm_id_embed"], "pm_id_embed").path
        )


def upscale_params(
    values: dict[str, Any], settings: Settings, inputs: InputFiles, library: ModelLibrary
) -> dict[str, Any]:
    """The stored parameters of an ESRGAN upscale job."""
    params = {k: v for k, v in values.items() if k not in CONTROL_FIELDS}
    params["mode"] = "upscale"
    params["upscaler_path"] = str(_resolve_upscaler(library, params["upscaler"], "upscaler"))
    image = decode(params["image"], "image", settings)
    # An upscale multiplies pixels by factor²: bound the result (a model's own scale is 4 at most
    # for the common ESRGAN files; a factor given counts as given).
    factor = params.get("factor") or 4
    width, height = round(image.width * factor), round(image.height * factor)
    if width * height > UPSCALE_MAX_FACTOR * settings.max_image_pixels:
        raise ApiError(
            422,
            "invalid_field",
            f"factor: the result would be {width}x{height} pixels; at most "
            f"{UPSCALE_MAX_FACTOR * settings.max_image_pixels} (4 x --max-image-pixels)",
            "factor",
        )
    params["image"] = inputs.save(image.convert("RGB"), "image")
    params["_inputs"] = inputs.relative
    return params


def _resolve_upscaler(library: ModelLibrary, name: str, field: str) -> Path:
    for model_type in (ModelType.ESRGAN, ModelType.UPSCALER):
        try:
            return find_model(library, model_type, name, field).path
        except ApiError as exc:
            if exc.status != 404:
                raise
    raise ApiError(404, "model_not_found", f"{field}: no upscaler named {name!r}", field)


def find_model(library: ModelLibrary, model_type: ModelType, name: str, field: str) -> Any:
    """A model file by name: 400 for a name that tries to leave its folder, 404 if absent."""
    try:
        return library.find(model_type, name, field)
    except InvalidModelName as exc:
        raise ApiError(400, "invalid_name", str(exc), field) from None
    except ModelNotFoundError:
        raise ApiError(404, "model_not_found", f"{field}: no {model_type.api_name} named {name!r}", field) from None


def _aligned(size: int) -> int:
    """An input image's size as a valid generation size: a multiple of 8, 64..4096."""
    return max(64, min(4096, size - size % 8))
