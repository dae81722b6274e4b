"""``/sdapi/v1/txt2img`` and ``img2img``: A1111 payloads to sdrest fields, and the answer back.

:func:`translate` maps the A1111 request onto sdrest's own generation fields (the same ones
``POST /api/v1/generate`` takes), collecting every field it cannot honour with the reason;
:func:`answer` builds A1111's ``{"images", "parameters", "info"}`` from the finished job, with
the infotexts read back from the written images (so ``info.infotexts[i]`` is byte for byte
the image's ``parameters`` chunk).
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import ImageFilter, ImageOps

from sdrest import __version__
from sdrest.api.compat.a1111_schemas import Img2ImgRequest, Txt2ImgRequest
from sdrest.api.compat.errors import rename_field
from sdrest.api.compat.names import find_checkpoint, model_name, sampler_label, sampler_name, scheduler_name
from sdrest.api.errors import ApiError, invalid
from sdrest.api.jobparams import MAX_RANDOM_SEED, decode, find_model
from sdrest.images.store import file_parameters, read_file
from sdrest.jobs import Job, JobStatus
from sdrest.models.presets import apply_template, load_template
from sdrest.models.types import ModelType
from sdrest.services import Services

#: sdrest field -> the A1111 field a client sent it as (to name the right field in errors).
A1111_FIELDS = {
    "sampler": "sampler_name",
    "scheduler": "scheduler",
    "batch_count": "batch_size",
    "strength": "denoising_strength",
    "init_image": "init_images[0]",
    "mask_image": "mask",
    "model": "override_settings.sd_model_checkpoint",
    "vae": "override_settings.sd_vae",
    "clip_skip": "override_settings.CLIP_stop_at_last_layers",
    "hires.upscaler": "hr_upscaler",
    "hires.scale": "hr_scale",
    "hires.width": "hr_resize_x",
    "hires.height": "hr_resize_y",
    "hires.steps": "hr_second_pass_steps",
    "hires.denoising_strength": "denoising_strength",
    "img_cfg_scale": "image_cfg_scale",
    "output_format": "samples_format",
    "output_quality": "jpeg_quality",
}

#: Fields sdrest cannot honour: (the value that means "off", why).
_UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "subseed_strength": (0.0, "variation seeds are not supported by stable-diffusion.cpp"),
    "seed_resize_from_h": (-1, "variation seeds are not supported"),
    "seed_resize_from_w": (-1, "variation seeds are not supported"),
    "restore_faces": (None, "no face restoration in sdrest"),
    "tiling": (None, "seamless tiling is not exposed by sdrest"),
    "s_min_uncond": (None, "sampler internals are not exposed by stable-diffusion.cpp"),
    "s_churn": (None, "sampler internals are not exposed by stable-diffusion.cpp"),
    "s_tmax": (None, "sampler internals are not exposed by stable-diffusion.cpp"),
    "s_tmin": (None, "sampler internals are not exposed by stable-diffusion.cpp"),
    "s_noise": (None, "sampler internals are not exposed by stable-diffusion.cpp"),
    "refiner_checkpoint": (None, "no refiner pass in sdrest"),
    "refiner_switch_at": (None, "no refiner pass in sdrest"),
    "disable_extra_networks": (False, "<lora:> tags are always applied"),
    "comments": (None, "comments are not stored"),
    "force_task_id": (None, "sdrest assigns job ids (see sdrest_job_id)"),
    "script_name": (None, "A1111 scripts do not exist in sdrest"),
    "script_args": ([], "A1111 scripts do not exist in sdrest"),
    "alwayson_scripts": ({}, "A1111 extensions do not exist in sdrest"),
    "infotext": (None, "reading parameters from an infotext is not supported; send the fields"),
    "do_not_save_samples": (False, "sdrest always keeps a job's images (until --job-retention-hours)"),
    "firstphase_width": (0, "obsolete A1111 field; use hr_resize_x/hr_scale"),
    "firstphase_height": (0, "obsolete A1111 field; use hr_resize_y/hr_scale"),
    "hr_checkpoint_name": (None, "the hires pass uses the same checkpoint"),
    "hr_sampler_name": (None, "the hires pass uses the same sampler"),
    "hr_scheduler": (None, "the hires pass uses the same scheduler"),
    "hr_prompt": ("", "the hires pass uses the same prompt"),
    "hr_negative_prompt": ("", "the hires pass uses the same negative prompt"),
    "firstpass_image": (None, "the first pass always runs"),
    "resize_mode": (0, "init images are stretched to width x height (resize mode 0)"),
    "mask_round": (True, "masks are used as grey levels"),
    "inpainting_fill": (1, "masked content always starts from the original image (inpainting_fill 1)"),
    "inpaint_full_res": (False, "the whole picture is inpainted (inpaint_full_res is not supported)"),
    "inpaint_full_res_padding": (0, "the whole picture is inpainted"),
    "initial_noise_multiplier": (None, "not exposed by stable-diffusion.cpp"),
    "latent_mask": (None, "not supported; send mask"),
}
_DEFAULT_DENOISE = 0.75
_DEFAULT_HIRES_DENOISE = 0.7
_OUTPUT_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
_OPTION_OVERRIDES = (
    "sd_model_checkpoint",
    "sd_vae",
    "CLIP_stop_at_last_layers",
    "samples_format",
    "jpeg_quality",
    "eta_ancestral",
)


@dataclass
class Translation:
    """An A1111 request as sdrest fields, and what of it was not honoured (field -> why)."""

    fields: dict[str, Any]
    mode: str
    prompt: str
    negative_prompt: str
    ignored: dict[str, str] = field(default_factory=dict)
    extra_images: list[str] = field(default_factory=list)


def translate(svc: Services, request: Txt2ImgRequest | Img2ImgRequest, options: dict[str, Any]) -> Translation:
    caps = svc.supervisor.capabilities
    ignored: dict[str, str] = {}
    for name, (off, why) in _UNSUPPORTED.items():
        value = getattr(request, name, None)
        # None and False both mean "off" for fields whose default is None (restore_faces, tiling).
        if name in type(request).model_fields and value != off and not (off is None and value in (None, False)):
            ignored[name] = why
    for name in request.model_extra or {}:
        ignored[name] = "not an A1111 field sdrest knows"
    if request.save_images:
        ignored["save_images"] = "images are always saved with their job (GET /api/v1/jobs/<sdrest_job_id>)"

    prompt, negative = _apply_styles(svc, request.prompt, request.negative_prompt, request.styles)
    fields: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative,
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "seed": request.seed,
    }
    sampler = request.sampler_name or request.sampler_index
    if sampler:
        fields["sampler"], folded = sampler_name(
            sampler,
            caps.get("samplers", []),
            caps.get("schedulers", []),
            "sampler_name" if request.sampler_name else "sampler_index",
        )
        if folded:
            fields["scheduler"] = folded
    if request.scheduler:
        scheduler = scheduler_name(request.scheduler, caps.get("schedulers", []))
        if scheduler:
            fields["scheduler"] = scheduler
    count = request.batch_size * request.n_iter
    if count > 16:
        raise invalid("batch_size", f"batch_size x n_iter must be at most 16, got {count}")
    fields["batch_count"] = count
    eta = request.eta if request.eta is not None else options.get("eta_ancestral")
    if eta is not None:
        fields["eta"] = eta

    settings = {**{k: options[k] for k in _OPTION_OVERRIDES if k in options}, **request.override_settings}
    for name in request.override_settings:
        if name not in _OPTION_OVERRIDES:
            ignored[f"override_settings.{name}"] = "not a setting sdrest applies per request"
    if request.override_settings.get("sd_model_checkpoint"):
        fields["model"] = model_name(
            svc.library, str(settings["sd_model_checkpoint"]), "override_settings.sd_model_checkpoint"
        )
        if request.override_settings_restore_afterwards:
            ignored["override_settings_restore_afterwards"] = (
                "the override checkpoint stays loaded afterwards (sdrest keeps the last model loaded); "
                "send sd_model_checkpoint with every request to pin one"
            )
    vae = request.override_settings.get("sd_vae")  # the sd_vae option itself is the loaded VAE
    if isinstance(vae, str) and vae.strip().lower() not in ("", "automatic", "none"):
        fields["vae"] = vae
    clip_skip = request.clip_skip if request.clip_skip is not None else settings.get("CLIP_stop_at_last_layers")
    if clip_skip is not None:
        fields["clip_skip"] = clip_skip
    fmt = settings.get("samples_format")
    if fmt is not None:
        if str(fmt).lower() not in _OUTPUT_FORMATS:
            raise invalid("override_settings.samples_format", "must be png, jpg or webp")
        fields["output_format"] = _OUTPUT_FORMATS[str(fmt).lower()]
    if settings.get("jpeg_quality") is not None:
        fields["output_quality"] = settings["jpeg_quality"]

    translation = Translation(fields, "txt2img", prompt, negative, ignored)
    if isinstance(request, Txt2ImgRequest):
        if request.enable_hr:
            fields["hires"] = _hires(request)
        else:
            for name in ("hr_upscaler", "hr_resize_x", "hr_resize_y", "hr_second_pass_steps"):
                ignored.pop(name, None)
    else:
        _img2img(svc, request, translation)
    return translation


def _hires(request: Txt2ImgRequest) -> dict[str, Any]:
    hires: dict[str, Any] = {
        "upscaler": request.hr_upscaler or "Latent",
        "denoising_strength": request.denoising_strength
        if request.denoising_strength is not None
        else _DEFAULT_HIRES_DENOISE,
    }
    if request.hr_resize_x or request.hr_resize_y:
        # A1111: one side given, the other follows the aspect ratio.
        width = request.hr_resize_x or round(request.hr_resize_y * request.width / request.height)
        height = request.hr_resize_y or round(request.hr_resize_x * request.height / request.width)
        hires.update(width=width - width % 8, height=height - height % 8)
    else:
        hires["scale"] = request.hr_scale
    if request.hr_second_pass_steps:
        hires["steps"] = request.hr_second_pass_steps
    return hires


def _img2img(svc: Services, request: Img2ImgRequest, translation: Translation) -> None:
    fields = translation.fields
    translation.mode = "img2img"
    if not request.init_images:
        raise ApiError(422, "missing_field", "init_images: at least one image is required", "init_images")
    fields["init_image"] = request.init_images[0]
    if len(request.init_images) > 1:
        translation.ignored["init_images"] = "only the first init image is used"
    translation.extra_images = list(request.init_images) if request.include_init_images else []
    fields["strength"] = request.denoising_strength if request.denoising_strength is not None else _DEFAULT_DENOISE
    if request.image_cfg_scale is not None:
        fields["img_cfg_scale"] = request.image_cfg_scale
    if request.mask:
        translation.mode = "inpaint"
        fields["mask_image"] = _mask(svc, request)
    else:
        for name in ("inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding", "mask_round"):
            translation.ignored.pop(name, None)


def _mask(svc: Services, request: Img2ImgRequest) -> str:
    """The mask as sdrest takes it (white is repainted), inverted and blurred as A1111 does."""
    assert request.mask is not None
    mask = decode(request.mask, "mask", svc.settings).convert("L")
    if request.inpainting_mask_invert:
        mask = ImageOps.invert(mask)
    blur = request.mask_blur if request.mask_blur is not None else max(request.mask_blur_x, request.mask_blur_y)
    if blur:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _apply_styles(svc: Services, prompt: str, negative: str, styles: list[str]) -> tuple[str, str]:
    """A1111 styles are sdrest's prompt templates of that name (prompts/ and neg_prompts/)."""
    for index, style in enumerate(styles):
        found = False
        for folder, is_negative in ((ModelType.PROMPTS, False), (ModelType.NEG_PROMPTS, True)):
            try:
                entry = find_model(svc.library, folder, style, f"styles[{index}]")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                continue
            found = True
            template = load_template(entry.path).template
            if is_negative:
                negative = (
                    apply_template(template, negative, negative=True)
                    if "{prompt}" in template
                    else ", ".join(p for p in (negative, template) if p)
                )
            else:
                prompt = apply_template(template, prompt)
        if not found:
            raise ApiError(
                404,
                "style_not_found",
                f"styles[{index}]: no prompt style {style!r}; see GET /sdapi/v1/prompt-styles",
                f"styles[{index}]",
            )
    return prompt, negative


def a1111_error(exc: ApiError) -> ApiError:
    """An error about an sdrest field, renamed to the A1111 field the client sent."""
    return rename_field(exc, A1111_FIELDS)


# --- the answer ----------------------------------------------------------------------------


def answer(
    svc: Services, job: Job, request: Txt2ImgRequest | Img2ImgRequest, translation: Translation, *, stopped: str | None
) -> dict[str, Any]:
    """A1111's response body for a finished (completed or interrupted) job."""
    result = job.result or {}
    images = result.get("images", []) if job.status is JobStatus.COMPLETED else []
    files = [image["file"] for image in images]
    contents = [read_file(svc.images, job.id, file) for file in files]  # each file read once
    encoded = [base64.b64encode(data).decode("ascii") for data in contents] if request.send_images else []
    infotexts = [
        file_parameters(svc.images, job.id, file, data)[0] or "" for file, data in zip(files, contents, strict=True)
    ]
    params = job.params
    seeds = result.get("seeds") or [params["seed"] + i for i in range(params.get("batch_count", 1))]
    subseed = request.subseed if request.subseed >= 0 else secrets.randbelow(MAX_RANDOM_SEED + 1)
    count = params.get("batch_count", 1)
    sampler = params.get("sampler")
    info = {
        "prompt": translation.prompt,
        "all_prompts": [translation.prompt] * count,
        "negative_prompt": translation.negative_prompt,
        "all_negative_prompts": [translation.negative_prompt] * count,
        "seed": seeds[0] if seeds else params["seed"],
        "all_seeds": seeds,
        "subseed": subseed,
        "all_subseeds": [subseed + i for i in range(count)],
        "subseed_strength": request.subseed_strength,
        "width": params.get("width", request.width),
        "height": params.get("height", request.height),
        "sampler_name": sampler_label(sampler) if sampler else request.sampler_name or "Default",
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": result.get("model") or params.get("model"),
        "sd_model_hash": _model_hash(svc, result.get("model") or params.get("model")),
        "sd_vae_name": params.get("vae"),
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": params.get("strength", (params.get("hires") or {}).get("denoising_strength")),
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": request.styles,
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.started_at or job.created_at)),
        "clip_skip": params.get("clip_skip") or 1,
        "is_using_inpainting_conditioning": False,
        "version": f"sdrest {__version__}",
        "sdrest_job_id": job.id,
        "sdrest_ignored": translation.ignored,
        "interrupted": stopped == "interrupted",
        "skipped": stopped == "skipped",
    }
    parameters = request.model_dump()
    if isinstance(request, Img2ImgRequest):
        parameters.update(init_images=None, mask=None)  # A1111 does not echo the images either
    if request.send_images and translation.extra_images:
        encoded += [_plain_base64(image) for image in translation.extra_images]
    return {"images": encoded, "parameters": parameters, "info": json.dumps(info, ensure_ascii=False)}


def _model_hash(svc: Services, name: str | None) -> str | None:
    if not name:
        return None
    try:
        return find_checkpoint(svc.library, name, "model").short_hash
    except ApiError:
        return None


def _plain_base64(value: str) -> str:
    """A request image as bare base64 (data URLs lose their prefix)."""
    return value.split(",", 1)[1] if value.startswith("data:") else value
