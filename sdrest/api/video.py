"""Video jobs: ``POST /api/v1/generate/video`` and the clips of a finished one.

A video job is a generation job of mode ``video``: the same queue, events, cancelling, waiting
and image URLs (one per frame) as the image routes; its result also lists ``videos`` (an
animated WebP, and an MP4 where PyAV is installed), served by ``GET /jobs/{id}/videos/{index}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from sdrest.api.errors import ApiError
from sdrest.api.generate import (
    CAPABILITY_WAIT,
    SUBMIT_ERRORS,
    SUBMITTED,
    accepted,
    check_model_choice,
    check_queue_room,
    waiting_slot,
    wants_wait,
)
from sdrest.api.image_input import fit_to
from sdrest.api.jobparams import (
    InputFiles,
    decode,
    find_model,
    generation_params,
    read_values,
)
from sdrest.api.jobs import job_output, send_output
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.jobs import SubmitQuery
from sdrest.api.schemas.parsing import parse_query, read_body
from sdrest.api.schemas.video import VIDEO_COMPONENTS, VideoQuery, VideoRequest
from sdrest.api.views import API
from sdrest.auth.web import owner_for_new_jobs
from sdrest.jobs import Job
from sdrest.models.types import ModelType
from sdrest.services import Services, services

bp = Blueprint("video", __name__, url_prefix=API)

#: The library's frame size when a video job names none and has no init image.
DEFAULT_SIZE = 512
VIDEO_TYPES = {"webp": "image/webp", "mp4": "video/mp4"}


@bp.post("/generate/video")
@api_doc(request=VideoRequest, query=SubmitQuery, responses=SUBMITTED, errors=(*SUBMIT_ERRORS, 409))
def generate_video() -> Any:
    """A video (Wan and other video models): the frames as the job's images, plus ``videos``.

    Like the mode routes, it answers 202 + Location at once unless the request waits
    (``"wait": true``): videos take long.
    """
    svc = services()
    data, from_form = read_body(request)
    if not svc.supervisor.wait_ready(CAPABILITY_WAIT):
        raise ApiError(503, "worker_unavailable", "the generation worker has not started", headers={"Retry-After": "5"})
    values = read_values(VideoRequest, data, from_form=from_form, capabilities=svc.supervisor.capabilities)
    check_queue_room(svc, values.get("priority") or 0)
    with waiting_slot(svc, wants_wait(values, default=False)) as wait:
        return accepted(svc, queue_video(svc, values), values, wait=wait)


@bp.get("/jobs/<job_id>/videos/<int:index>")
@api_doc(
    query=VideoQuery,
    errors=(400, 404),
    responses={
        200: Content(
            tuple(VIDEO_TYPES.values()), {"type": "string", "format": "binary"}, "the clip (animated WebP or MP4)"
        ),
        304: None,
    },
)
def job_video(job_id: str, index: int) -> Any:
    """A video job's clip: ``videos[index]`` of the job (0: animated WebP, 1: MP4 if made)."""
    svc = services()
    query = parse_query(VideoQuery, request.args)
    _job, entry, file = job_output(svc, job_id, "videos", index, query.token)
    return send_output(
        file, f"{job_id}-video{file.suffix}", download=query.download, mimetype=VIDEO_TYPES.get(entry["format"])
    )


def queue_video(svc: Services, values: dict[str, Any]) -> Job:
    """Queue the video job of validated values (input frames saved, model names resolved)."""
    inputs = InputFiles(svc.settings, svc.images)
    try:
        params = video_params(values, svc, inputs)
        check_model_choice(svc, params)
        inputs.publish()
        return svc.store.create("video", params, owner=owner_for_new_jobs(), priority=values.get("priority", 0))
    except BaseException:
        inputs.discard()
        raise


def video_params(values: dict[str, Any], svc: Services, inputs: InputFiles) -> dict[str, Any]:
    """The stored parameters of a video job: those of a text-to-image job (model, components,
    LoRAs, seed, init image), plus the high-noise model, the end image and the control frames."""
    components = {name: values.pop(name) for name in VIDEO_COMPONENTS if values.get(name) is not None}
    end_image, control = values.pop("end_image", None), values.pop("control_video", None)
    params = generation_params(values, "txt2img", svc.settings, inputs, svc.supervisor.default_model, svc.library)
    params["mode"] = "video"
    params.pop("batch_count", None)
    # The listed LoRAs come first in params["loras"] (prompt tags after them): carry their expert.
    for lora, requested in zip(params["loras"], values.get("loras") or [], strict=False):
        if requested.get("high_noise"):
            lora["high_noise"] = True
    for name, (option, folder) in VIDEO_COMPONENTS.items():
        if name in components:
            entry = find_model(svc.library, ModelType.from_name(folder), components[name], name)
            params["model_options"][option] = str(entry.path)
    width = params.setdefault("width", DEFAULT_SIZE)
    height = params.setdefault("height", DEFAULT_SIZE)
    if end_image is not None:
        image = decode(end_image, "end_image", svc.settings)
        params["end_image"] = inputs.save(fit_to(image.convert("RGB"), width, height), "end_image")
    if control is not None:
        params["control_video"] = [
            inputs.save(
                fit_to(decode(item, f"control_video[{i}]", svc.settings).convert("RGB"), width, height),
                f"control_frame_{i}",
            )
            for i, item in enumerate(control)
        ]
    if inputs.saved:
        params["_inputs"] = inputs.relative
    return params


__all__ = ["bp"]
