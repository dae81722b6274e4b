"""AUTOMATIC1111's lists, refreshes, model (un)loading and image tools under ``/sdapi/v1``.

Lists come from sdrest's model library and the worker's capabilities, in A1111's shapes. No
server path is shown (``filename`` is the path inside its model folder), and ``cmd-flags`` never
shows a secret.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from flask import jsonify, request
from PIL import Image
from pydantic import RootModel

from sdrest.api.compat import errors
from sdrest.api.compat.a1111 import _ERRORS, bp, queue_load
from sdrest.api.compat.a1111_schemas import (
    Embeddings,
    ExtraSingleImageRequest,
    ExtraSingleImageResponse,
    LatentUpscaleMode,
    Lora,
    MemoryResponse,
    PngInfoRequest,
    PngInfoResponse,
    PromptStyle,
    Sampler,
    Scheduler,
    SdModel,
    SdVae,
    Upscaler,
)
from sdrest.api.compat.jobs import submit_upscale, wait_for
from sdrest.api.compat.names import checkpoint, sampler_label, scheduler_label
from sdrest.api.errors import ApiError
from sdrest.api.generate import waiting_slot
from sdrest.api.jobparams import decode, model_presets
from sdrest.api.schemas import Content, api_doc
from sdrest.api.system import meminfo
from sdrest.images.store import encode_file
from sdrest.infotext import parse_infotext
from sdrest.jobs import JobStatus
from sdrest.models.presets import load_template
from sdrest.models.types import ModelType
from sdrest.outputs import image_parameters
from sdrest.services import services
from sdrest.untrusted_images import UntrustedImageError, open_untrusted

_NULL = Content(schema={"type": "null"})
_OBJECT = Content(schema={"type": "object"})
#: Settings never shown by cmd-flags, whatever their value.
SECRET_SETTINGS = ("jwt_secret",)
#: Upscalers done with Pillow in the request (no model, no job).
PIL_UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}


class SdModels(RootModel[list[SdModel]]):
    pass


class SdVaes(RootModel[list[SdVae]]):
    pass


class Samplers(RootModel[list[Sampler]]):
    pass


class Schedulers(RootModel[list[Scheduler]]):
    pass


class Upscalers(RootModel[list[Upscaler]]):
    pass


class LatentUpscaleModes(RootModel[list[LatentUpscaleMode]]):
    pass


class Loras(RootModel[list[Lora]]):
    pass


class PromptStyles(RootModel[list[PromptStyle]]):
    pass


@bp.get("/cmd-flags")
@api_doc(responses={200: _OBJECT}, **_ERRORS)
def cmd_flags() -> Any:
    """The server's settings (secrets and server paths left out)."""
    values = services().settings.to_dict(redact=True)
    return jsonify(
        {
            k: v
            for k, v in values.items()
            if k not in SECRET_SETTINGS and not (isinstance(v, str) and Path(v).is_absolute())
        }
    )


@bp.get("/sd-models")
@api_doc(responses={200: SdModels}, **_ERRORS)
def sd_models() -> Any:
    """Checkpoints: A1111 title (``file [hash]`` once hashed), name, hashes, file name; then the
    installed recipes (model presets), by name, usable as ``override_settings.sd_model_checkpoint``."""
    library = services().library
    out = []
    for entry in library.entries(ModelType.CHECKPOINT):
        ckpt = checkpoint(library, entry)
        out.append(
            {
                "title": ckpt.title,
                "model_name": ckpt.model_name,
                "hash": ckpt.short_hash,
                "sha256": ckpt.sha256,
                "filename": entry.relative_path,
                "config": None,
            }
        )
    for entry in model_presets(library):  # installed recipes: one model of several files
        out.append(
            {
                "title": entry.name,
                "model_name": entry.name,
                "hash": None,
                "sha256": None,
                "filename": f"{ModelType.PRESETS.folder}/{entry.relative_path}",
                "config": None,
            }
        )
    return jsonify(out)


@bp.get("/sd-vae")
@api_doc(responses={200: SdVaes}, **_ERRORS)
def sd_vae() -> Any:
    """VAEs (use a model_name as the sd_vae option)."""
    return jsonify(
        [{"model_name": e.name, "filename": e.relative_path} for e in services().library.entries(ModelType.VAE)]
    )


@bp.get("/samplers")
@api_doc(responses={200: Samplers}, **_ERRORS)
def samplers() -> Any:
    """Samplers by A1111 name, with sdrest's name as the alias."""
    names = services().supervisor.capabilities.get("samplers", [])
    return jsonify([{"name": sampler_label(n), "aliases": [n], "options": {}} for n in names])


@bp.get("/schedulers")
@api_doc(responses={200: Schedulers}, **_ERRORS)
def schedulers() -> Any:
    """Schedulers (``automatic``: the model's default)."""
    names = services().supervisor.capabilities.get("schedulers", [])
    entries = [("automatic", "Automatic"), *((n, scheduler_label(n)) for n in names)]
    return jsonify(
        [
            {"name": n, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
            for n, label in entries
        ]
    )


@bp.get("/upscalers")
@api_doc(responses={200: Upscalers}, **_ERRORS)
def upscalers() -> Any:
    """Upscalers for extra-single-image: None, Lanczos, Nearest and the ESRGAN models."""
    out: list[dict[str, Any]] = [
        {
            "name": name,
            "model_name": None,
            "model_path": None,
            "model_url": None,
            "scale": 4 if name != "None" else None,
        }
        for name in ("None", *PIL_UPSCALERS)
    ]
    for entry in services().library.entries(ModelType.ESRGAN | ModelType.UPSCALER):
        out.append(
            {
                "name": entry.name,
                "model_name": "ESRGAN",
                "model_path": entry.relative_path,
                "model_url": None,
                "scale": 4,
            }
        )
    return jsonify(out)


@bp.get("/latent-upscale-modes")
@api_doc(responses={200: LatentUpscaleModes}, **_ERRORS)
def latent_upscale_modes() -> Any:
    """Latent upscalers usable as hr_upscaler."""
    names = services().supervisor.capabilities.get("hires_upscalers", [])
    return jsonify([{"name": n} for n in names if n.startswith("Latent")])


@bp.get("/loras")
@api_doc(responses={200: Loras}, **_ERRORS)
def loras() -> Any:
    """LoRAs (use as ``<lora:name:weight>`` in prompts)."""
    return jsonify(
        [
            {"name": e.name, "alias": e.name, "path": e.relative_path, "metadata": {}}
            for e in services().library.entries(ModelType.LORA)
        ]
    )


@bp.get("/embeddings")
@api_doc(responses={200: Embeddings}, **_ERRORS)
def embeddings() -> Any:
    """Textual-inversion embeddings (every one is loaded with the model)."""
    empty = {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": None, "vectors": None}
    names = [Path(e.name).name for e in services().library.entries(ModelType.EMBEDDING)]
    return jsonify({"loaded": {name: dict(empty) for name in names}, "skipped": {}})


@bp.get("/prompt-styles")
@api_doc(responses={200: PromptStyles}, **_ERRORS)
def prompt_styles() -> Any:
    """Styles: sdrest's prompt templates (prompts/ and neg_prompts/ files of the same name)."""
    library = services().library
    styles: dict[str, dict[str, Any]] = {}
    for folder, key in ((ModelType.PROMPTS, "prompt"), (ModelType.NEG_PROMPTS, "negative_prompt")):
        for entry in library.entries(folder):
            style = styles.setdefault(entry.name, {"name": entry.name, "prompt": None, "negative_prompt": None})
            style[key] = load_template(entry.path).template
    return jsonify(sorted(styles.values(), key=lambda s: s["name"]))


@bp.post("/refresh-checkpoints")
@bp.post("/refresh-loras")
@bp.post("/refresh-vae")
@api_doc(responses={200: _NULL}, **_ERRORS)
def refresh() -> Any:
    """Scan the model folders again (checkpoints, LoRAs and VAEs alike)."""
    services().library.scan()
    return jsonify(None)


@bp.post("/unload-checkpoint")
@api_doc(responses={200: _NULL}, errors=(503,), **_ERRORS)
def unload_checkpoint() -> Any:
    """Queue unloading the model (after the jobs before it)."""
    queue_load(services(), None)
    return jsonify(None)


@bp.post("/reload-checkpoint")
@api_doc(responses={200: _NULL}, errors=(409, 503), **_ERRORS)
def reload_checkpoint() -> Any:
    """Queue loading the current model again (after an unload)."""
    svc = services()
    name = svc.supervisor.default_model
    if name is None:
        raise ApiError(409, "no_model_loaded", "no model to reload: set sd_model_checkpoint", "sd_model_checkpoint")
    queue_load(svc, name)
    return jsonify(None)


@bp.get("/memory")
@api_doc(responses={200: MemoryResponse}, **_ERRORS)
def memory() -> Any:
    """RAM of the machine (GPU memory is not reported)."""
    memory = meminfo()
    total, free = memory["total"], memory["available"]
    ram = {"free": free, "used": total - free if total is not None and free is not None else None, "total": total}
    return jsonify({"ram": ram, "cuda": {"error": "GPU memory is not reported by sdrest"}})


@bp.post("/extra-single-image")
@api_doc(
    request=ExtraSingleImageRequest,
    responses={200: ExtraSingleImageResponse},
    errors=(400, 404, 415, 422, 429, 503),
    form=False,
    **_ERRORS,
)
def extra_single_image() -> Any:
    """Upscale one image: upscaler_1 an ESRGAN model (an sdrest upscale job), Lanczos or Nearest."""
    svc = services()
    body = errors.parse(ExtraSingleImageRequest, errors.body_of(request))
    if body.upscaler_1 == "None" or body.upscaler_1 in PIL_UPSCALERS:
        image = decode(body.image, "image", svc.settings)
        if body.upscaler_1 != "None":
            factor = body.upscaling_resize
            if body.resize_mode == 1:
                size = (body.upscaling_resize_w, body.upscaling_resize_h)
            else:
                size = (round(image.width * factor), round(image.height * factor))
            if size[0] * size[1] > svc.settings.max_image_pixels:
                raise ApiError(
                    422,
                    "invalid_field",
                    "upscaling_resize: the result would exceed the largest image size",
                    "upscaling_resize",
                )
            image = image.resize(size, PIL_UPSCALERS[body.upscaler_1])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return jsonify({"html_info": "", "image": base64.b64encode(buffer.getvalue()).decode("ascii")})
    fields: dict[str, Any] = {"image": body.image, "upscaler": body.upscaler_1}
    if body.resize_mode == 0 and float(body.upscaling_resize).is_integer():
        fields["factor"] = int(body.upscaling_resize)
    try:
        with waiting_slot(svc, True):
            job = wait_for(svc, submit_upscale(fields))
    except ApiError as exc:
        if exc.field == "upscaler":
            raise ApiError(
                exc.status, exc.code, "upscaler_1" + exc.message.removeprefix("upscaler"), "upscaler_1"
            ) from None
        raise
    if job.status is not JobStatus.COMPLETED:
        raise ApiError(
            500 if job.status is JobStatus.FAILED else 409,
            f"job_{job.status.value}",
            f"upscale job {job.id} {job.status.value}: {(job.error or {}).get('message', '')}".strip(),
        )
    image = (job.result or {})["images"][0]
    return jsonify({"html_info": "", "image": encode_file(svc.images, job.id, image["file"])})


@bp.post("/png-info")
@api_doc(request=PngInfoRequest, responses={200: PngInfoResponse}, errors=(400, 415, 422), form=False, **_ERRORS)
def png_info() -> Any:
    """The generation parameters in an image (sdrest's and A1111's infotext, PNG/JPEG/WebP)."""
    svc = services()
    body = errors.parse(PngInfoRequest, errors.body_of(request))
    raw = body.image.split(",", 1)[1] if body.image.startswith("data:") else body.image
    try:
        data = base64.b64decode(raw, validate=False)
    except ValueError:
        raise ApiError(422, "invalid_image", "image: not base64", "image") from None
    if len(data) > svc.settings.max_image_mb * 2**20:
        raise ApiError(413, "image_too_large", f"image: larger than {svc.settings.max_image_mb:g} MiB", "image")
    try:
        # Only what the image itself carries (no sidecar); opened through the bounded reader, so
        # a small file declaring a huge image is refused from its header, never decoded.
        with open_untrusted(data, svc.settings.max_image_pixels) as image:
            text, _ = image_parameters(image, lambda: None)
            items = {k: v for k, v in image.info.items() if k != "parameters" and isinstance(v, (str, int, float))}
    except UntrustedImageError as exc:
        if exc.code == "image_too_large":
            raise ApiError(413, "image_too_large", f"image: {exc}", "image") from None
        raise ApiError(422, "invalid_image", "image: not a readable image", "image") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ApiError(422, "invalid_image", "image: not a readable image", "image") from None
    return jsonify({"info": text or "", "items": items, "parameters": _a1111_parameters(text) if text else {}})


def _a1111_parameters(text: str) -> dict[str, Any]:
    """An infotext as A1111's ``parse_generation_parameters`` gives it (``Size-1``/``Size-2``)."""
    parsed = parse_infotext(text)
    out: dict[str, Any] = {"Prompt": parsed.pop("prompt"), "Negative prompt": parsed.pop("negative_prompt")}
    for key, value in parsed.items():
        width, sep, height = value.partition("x")
        if sep and width.isdigit() and height.isdigit():
            out[f"{key}-1"], out[f"{key}-2"] = width, height
        else:
            out[key] = value
    return out
