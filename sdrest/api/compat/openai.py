"""OpenAI's images API under ``/v1``: generations, edits, models.

Requests become ordinary sdrest jobs owned by the caller (``Authorization: Bearer <sdrest API
key>``), and the call waits for them, cancelling the job if the client leaves (see
:mod:`sdrest.api.compat.jobs`). sdrest's own generation fields (``steps``, ``cfg_scale``,
``sampler``, ``seed``, ``negative_prompt``, ...) are accepted as extra fields (the SDK's
``extra_body``). Errors are OpenAI-shaped, so the official SDK raises its own error types.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from flask import Blueprint, jsonify, request
from PIL import Image, ImageOps

from sdrest.api.compat import errors
from sdrest.api.compat.jobs import submit_generation, wait_for
from sdrest.api.compat.names import model_name
from sdrest.api.compat.openai_schemas import (
    ImageEditRequest,
    ImageGenerationRequest,
    ImagesResponse,
    ModelItem,
    ModelList,
    OpenAIError,
)
from sdrest.api.errors import ApiError
from sdrest.api.generate import waiting_slot
from sdrest.api.jobparams import decode, model_presets
from sdrest.api.schemas import api_doc
from sdrest.api.schemas.operation import DocDefaults
from sdrest.api.schemas.parsing import read_body
from sdrest.api.views import image_url
from sdrest.images.store import encode_file
from sdrest.jobs import Job, JobStatus
from sdrest.models.types import ModelType
from sdrest.services import Services, services

bp = Blueprint("openai", __name__, url_prefix="/v1")
errors.install(bp, errors.openai_body, errors.openai_status)

_DOC: DocDefaults = {"error_model": OpenAIError, "tags": ("openai",)}
#: OpenAI's model names; asking for one of them means "the loaded model".
OPENAI_MODELS = ("dall-e-", "gpt-image-")
#: sdrest field -> the OpenAI field a client sent it as (to name the right param in errors).
OPENAI_FIELDS = {
    "batch_count": "n",
    "width": "size",
    "height": "size",
    "output_quality": "output_compression",
    "init_image": "image",
    "mask_image": "mask",
}
#: Fields of OpenAI's requests that are not sdrest generation fields.
_OPENAI_FIELDS = set(ImageEditRequest.model_fields)


@bp.post("/images/generations")
@api_doc(
    request=ImageGenerationRequest,
    responses={200: ImagesResponse},
    errors=(400, 401, 404, 409, 415, 429, 503),
    form=False,
    **_DOC,
)
def generations() -> Any:
    """Create images from a prompt."""
    body = errors.parse(ImageGenerationRequest, errors.body_of(request))
    fields = _common(body)
    return _run(body, fields, "txt2img")


@bp.post("/images/edits")
@api_doc(request=ImageEditRequest, responses={200: ImagesResponse}, errors=(400, 401, 404, 409, 415, 429, 503), **_DOC)
def edits() -> Any:
    """Edit an image: the mask's transparent pixels (or the image's own) are repainted; without
    any transparency the whole image is redrawn (img2img, ``strength`` 0.75 unless given)."""
    svc = services()
    raw, from_form = _edit_body()
    body = errors.parse(ImageEditRequest, raw)
    fields = _common(body)
    image_value = body.image
    if isinstance(image_value, list):
        image_value = image_value[0] if image_value else None
    if image_value is None and body.images:
        image_value = body.images[0].get("image_url")
    if image_value is None:
        raise ApiError(400, "missing_field", "image: required", "image")
    image = decode(image_value, "image", svc.settings)
    mask_value = body.mask.get("image_url") if isinstance(body.mask, dict) else body.mask
    mask = _edit_mask(decode(mask_value, "mask", svc.settings) if mask_value is not None else None, image)
    fields["init_image"] = _png_base64(image.convert("RGB"))  # width/height default to the image's
    if mask is not None:
        fields["mask_image"] = _png_base64(mask)
        return _run(body, fields, "inpaint", from_form=from_form)
    fields.setdefault("strength", 0.75)
    return _run(body, fields, "img2img", from_form=from_form)


@bp.get("/models")
@api_doc(responses={200: ModelList}, **_DOC)
def models() -> Any:
    """The checkpoints and the installed recipes (model presets), as OpenAI models."""
    library = services().library
    entries = [*library.entries(ModelType.CHECKPOINT), *model_presets(library)]
    return jsonify({"object": "list", "data": [_model(e) for e in entries]})


@bp.get("/models/<path:model_id>")
@api_doc(responses={200: ModelItem}, errors=(404,), **_DOC)
def model(model_id: str) -> Any:
    """One checkpoint or installed recipe, as an OpenAI model."""
    library = services().library
    for entry in [*library.entries(ModelType.CHECKPOINT), *model_presets(library)]:
        if model_id in (entry.name, entry.relative_path):
            return jsonify(_model(entry))
    raise ApiError(404, "model_not_found", f"model: no model {model_id!r}", "model")


def _model(entry: Any) -> dict[str, Any]:
    return {"id": entry.name, "object": "model", "created": int(entry.mtime), "owned_by": "sdrest"}


# --- translation -----------------------------------------------------------------------------


def _edit_body() -> tuple[dict[str, Any], bool]:
    """A multipart edit (``image[]`` read as ``image``) or a JSON one; True for a form."""
    data, from_form = read_body(request)
    if "image[]" in data:
        data["image"] = data.pop("image[]")
    return data, from_form


def _common(body: ImageGenerationRequest | ImageEditRequest) -> dict[str, Any]:
    """sdrest fields for what generations and edits share; native fields passed through."""
    if body.background == "transparent":
        raise ApiError(400, "unsupported_value", "background: transparent backgrounds are not supported", "background")
    if body.stream:
        raise ApiError(400, "unsupported_value", "stream: streaming is not supported", "stream")
    fields: dict[str, Any] = {k: v for k, v in (body.model_extra or {}).items() if k not in _OPENAI_FIELDS}
    fields["prompt"] = body.prompt
    fields["batch_count"] = body.n
    if body.model and not body.model.startswith(OPENAI_MODELS):
        fields["model"] = model_name(services().library, body.model, "model")
    if body.size and body.size != "auto":
        width, sep, height = body.size.lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise ApiError(400, "invalid_field", f"size: must be WIDTHxHEIGHT or auto, got {body.size!r}", "size")
        fields.update(width=int(width), height=int(height))
    fields["output_format"] = body.output_format or "png"
    if body.output_compression is not None and fields["output_format"] != "png":
        fields["output_quality"] = max(1, body.output_compression)
    return fields


def _edit_mask(mask: Image.Image | None, image: Image.Image) -> Image.Image | None:
    """sdrest's mask (white is repainted) from OpenAI's (transparent is repainted); None: no mask."""
    source = mask if mask is not None else image
    if source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info:
        alpha = source.convert("RGBA").getchannel("A")
        if mask is None and alpha.getextrema()[0] == 255:
            return None  # an opaque image and no mask: redraw the whole image
        return ImageOps.invert(alpha)
    if mask is None:
        return None
    return mask.convert("L")  # a mask without alpha: white is repainted, as in sdrest


def _run(
    body: ImageGenerationRequest | ImageEditRequest, fields: dict[str, Any], mode: str, *, from_form: bool = False
) -> Any:
    svc = services()
    try:
        with waiting_slot(svc, True):
            job = wait_for(svc, submit_generation(fields, mode, from_form=from_form))
    except ApiError as exc:
        raise errors.rename_field(exc, OPENAI_FIELDS) from None
    return jsonify(_answer(svc, job, body))


def _answer(svc: Services, job: Job, body: ImageGenerationRequest | ImageEditRequest) -> dict[str, Any]:
    if job.status is not JobStatus.COMPLETED:
        error = job.error or {}
        raise ApiError(
            500 if job.status is JobStatus.FAILED else 409,
            f"job_{job.status.value}",
            f"job {job.id} {job.status.value}: {error.get('message') or ''}".strip(),
        )
    images = (job.result or {}).get("images", [])
    if body.response_format == "url":
        root = request.host_url.rstrip("/")
        data = [{"url": root + image_url(job.id, image["index"])} for image in images]
    else:
        data = [{"b64_json": encode_file(svc.images, job.id, image["file"])} for image in images]
    first = images[0] if images else {"width": 0, "height": 0}
    return {
        "created": int(job.created_at),
        "data": data,
        "background": "opaque",
        "output_format": job.params.get("output_format", "png"),
        "quality": body.quality or "auto",
        "size": f"{first['width']}x{first['height']}",
    }


def _png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
