"""Submitting and cancelling generation and upscale jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, jsonify, request

from sdrest.api.errors import ApiError
from sdrest.api.jobparams import (
    InputFiles,
    generation_params,
    option_targets,
    read_values,
    upscale_params,
    with_preset,
)
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.generation import (
    MODE_REQUESTS,
    GenerationRequest,
    Img2ImgRequest,
    InpaintRequest,
    Txt2ImgRequest,
    UpscaleRequest,
)
from sdrest.api.schemas.jobs import JobQuery, JobView, SubmitQuery
from sdrest.api.schemas.parsing import parse_query, read_body
from sdrest.api.slots import hold_slot
from sdrest.api.views import API, job_or_404, job_view
from sdrest.auth.web import current_principal, owner_for_new_jobs
from sdrest.jobs import Job, JobStatus
from sdrest.services import Services, services

bp = Blueprint("generate", __name__, url_prefix=API)

#: How long a request waits for the first worker to report what the library offers.
CAPABILITY_WAIT = 30.0


#: What a submission answers: the finished job, or the queued one (with a Location header).
SUBMITTED = {
    200: Content(schema=JobView, description="finished (waiting): the job with its images"),
    202: Content(schema=JobView, description="queued: the job, with a Location header to poll"),
}
#: Errors of every submission: bad fields (400/404/422), body too large (413), media type (415),
#: too many waiting (429), queue full or no worker (503).
SUBMIT_ERRORS = (400, 404, 413, 415, 422, 429, 503)


@bp.post("/generate")
@api_doc(request=GenerationRequest, query=SubmitQuery, responses=SUBMITTED, errors=(*SUBMIT_ERRORS, 409))
def generate() -> Any:
    """Mode from the fields: a mask means inpainting, an init image img2img, else txt2img.

    Answers with the finished job, as the spec's client examples expect, unless the request says
    ``"wait": false`` (or ``?wait=false``, or ``Prefer: respond-async``): then 202 + Location.
    """
    return _submit(None, wait_default=True)


@bp.post("/generate/text2img")
@api_doc(request=Txt2ImgRequest, query=SubmitQuery, responses=SUBMITTED, errors=(*SUBMIT_ERRORS, 409))
def text2img() -> Any:
    """Text to image."""
    return _submit("txt2img")


@bp.post("/generate/img2img")
@api_doc(request=Img2ImgRequest, query=SubmitQuery, responses=SUBMITTED, errors=(*SUBMIT_ERRORS, 409))
def img2img() -> Any:
    """Image to image: init_image changed by the prompt (strength)."""
    return _submit("img2img")


@bp.post("/generate/inpainting")
@api_doc(request=InpaintRequest, query=SubmitQuery, responses=SUBMITTED, errors=(*SUBMIT_ERRORS, 409))
def inpainting() -> Any:
    """Inpainting: the white part of mask_image repainted."""
    return _submit("inpaint")


@bp.post("/upscale")
@api_doc(request=UpscaleRequest, query=SubmitQuery, responses=SUBMITTED, errors=SUBMIT_ERRORS)
def upscale() -> Any:
    """Upscale an image with an ESRGAN model."""
    svc = services()
    data, from_form = read_body(request)
    values = upscale_values(svc, data, from_form=from_form)
    with waiting_slot(svc, wants_wait(values, default=False)) as wait:
        return accepted(svc, queue_upscale(svc, values), values, wait=wait)


@bp.get("/generate/<job_id>")
@bp.get("/jobs/<job_id>")
@api_doc(query=JobQuery, responses={200: JobView}, errors=(400, 404))
def get_job(job_id: str) -> Any:
    """A job: status, progress, queue position, timings and images (?base64=true adds data)."""
    svc = services()
    job = job_or_404(svc.store, job_id)
    base64_from = svc.images if parse_query(JobQuery, request.args).base64 else None
    return jsonify(job_view(job, svc.store, svc.settings, base64_from=base64_from))


@bp.delete("/generate/<job_id>")
@api_doc(responses={200: JobView}, errors=(404, 409))
def cancel_job(job_id: str) -> Any:
    """Cancel a queued job at once, or a running one within a sampling step."""
    svc = services()
    job_or_404(svc.store, job_id)  # someone else's job is not found, and never cancelled
    if not cancel(svc, job_id):
        finished = job_or_404(svc.store, job_id)
        raise ApiError(409, "job_finished", f"job {job_id} already {finished.status.value}", "job_id")
    job = svc.store.get(job_id)
    assert job is not None
    return jsonify(job_view(job, svc.store, svc.settings))


def _submit(mode: str | None, *, wait_default: bool = False) -> Any:
    svc = services()
    data, from_form = read_body(request)
    mode, values = generation_values(svc, data, mode, from_form=from_form)
    with waiting_slot(svc, wants_wait(values, default=wait_default)) as wait:
        return accepted(svc, queue_generation(svc, values, mode), values, wait=wait)


# The one submission path of every generation route: /api/v1/generate*, and the A1111 and OpenAI
# compatibility routes (sdrest.api.compat). Validation first, then (after the caller took its
# waiting slot, if it waits) the job.


def generation_values(
    svc: Services, data: dict[str, Any], mode: str | None, *, from_form: bool
) -> tuple[str, dict[str, Any]]:
    """The mode (None: from the fields) and validated values of a generation request, once the
    queue has room for it."""
    data = with_preset(data, svc.library, svc.settings.model)
    if mode is None:
        mode = "inpaint" if data.get("mask_image") else "img2img" if data.get("init_image") else "txt2img"
    if not svc.supervisor.wait_ready(CAPABILITY_WAIT):
        raise ApiError(503, "worker_unavailable", "the generation worker has not started", headers={"Retry-After": "5"})
    values = read_values(
        MODE_REQUESTS[mode], data, from_form=from_form, mode=mode, capabilities=svc.supervisor.capabilities
    )
    check_queue_room(svc, values.get("priority") or 0)
    return mode, values


def queue_generation(svc: Services, values: dict[str, Any], mode: str) -> Job:
    """Queue the job of validated generation values (input images saved, names resolved)."""
    inputs = InputFiles(svc.settings, svc.images)
    try:
        params = generation_params(values, mode, svc.settings, inputs, svc.supervisor.default_model, svc.library)
        check_model_choice(svc, params)
        inputs.publish()
        return svc.store.create(mode, params, owner=owner_for_new_jobs(), priority=values.get("priority", 0))
    except BaseException:
        inputs.discard()
        raise


def upscale_values(svc: Services, data: dict[str, Any], *, from_form: bool) -> dict[str, Any]:
    """The validated values of an upscale request, once the queue has room for it."""
    values = read_values(UpscaleRequest, data, from_form=from_form)
    check_queue_room(svc, values.get("priority") or 0)
    return values


def queue_upscale(svc: Services, values: dict[str, Any]) -> Job:
    """Queue the upscale job of validated values."""
    inputs = InputFiles(svc.settings, svc.images)
    try:
        params = upscale_params(values, svc.settings, inputs, svc.library)
        inputs.publish()
        return svc.store.create("upscale", params, owner=owner_for_new_jobs(), priority=values.get("priority", 0))
    except BaseException:
        inputs.discard()
        raise


def cancel(svc: Services, job_id: str) -> bool:
    """Cancel a queued job at once, or a running one within a sampling step; False if it had
    already finished. Visibility is the caller's to check."""
    before = svc.store.cancel(job_id)
    if before is None:
        return False
    if before.status is JobStatus.RUNNING:
        svc.supervisor.cancel_running(job_id)
    else:
        svc.supervisor.announce_queue()
    return True


def wants_wait(values: dict[str, Any], *, default: bool) -> bool:
    """Whether to answer with the finished job: the body's ``wait``, else ``?wait=``, else
    ``Prefer: respond-async`` (RFC 7240) for no, else the route's default."""
    if "wait" in values:
        return bool(values["wait"])
    if request.args.get("wait") is not None:
        return _flag("wait", default)
    return default and not _prefers_async()


def _prefers_async() -> bool:
    preferences = request.headers.get("Prefer", "")
    return any(p.split(";")[0].split("=")[0].strip().lower() == "respond-async" for p in preferences.split(","))


@contextmanager
def waiting_slot(svc: Services, wait: bool) -> Iterator[bool]:
    """Hold one of the bounded long-request slots while waiting (counted per user with the event
    streams: :mod:`sdrest.api.slots`). Taken before the job is created, so a 429 (no slot free)
    never leaves behind a job the client does not know about."""
    if not wait:
        yield False
        return
    give_back = hold_slot(svc, "too_many_waiting", 'nothing was queued: retry, or send "wait": false and poll the job')
    try:
        yield True
    finally:
        give_back()


def accepted(svc: Services, job: Job, values: dict[str, Any], *, wait: bool) -> Any:
    """The answer to a submission: the finished job (200) when waiting, else 202 + Location.
    ``wait`` is only true inside :func:`waiting_slot`."""
    svc.supervisor.notify()
    include_base64 = values.get("base64", _flag("base64", wait))
    if wait:
        job = _wait_for(svc, job)
    body = job_view(
        job, svc.store, svc.settings, base64_from=svc.images if include_base64 and job.status.finished else None
    )
    response = jsonify(body)
    response.status_code = 200 if job.status.finished else 202
    response.headers["Location"] = body["links"]["self"]
    if not wait and _prefers_async():
        response.headers["Preference-Applied"] = "respond-async"
    return response


def _wait_for(svc: Services, job: Job) -> Job:
    """Block until the job finishes or ``--wait-timeout`` passes (the caller holds a slot)."""
    deadline = time.monotonic() + svc.settings.wait_timeout
    with svc.bus.subscribe(last_event_id=None, job_id=job.id) as subscription:
        while True:
            current = svc.store.get(job.id)
            if current is None or current.status.finished or time.monotonic() >= deadline:
                return current or job
            subscription.next_batch(timeout=min(1.0, max(0.0, deadline - time.monotonic())))


def check_model_choice(svc: Services, params: dict[str, Any]) -> None:
    """A job naming another model (or other model options) makes the worker load it: the model
    everyone shares changes. Users may name the current model and those in --user-models
    ('*': any, options included); admins anything."""
    principal = current_principal()
    if principal is None or principal.sees_everything:
        return
    allowed = {name.strip() for name in (svc.settings.user_models or "").split(",") if name.strip()}
    if "*" in allowed:
        return
    name = params.get("model")
    if name and name != svc.supervisor.default_model and name not in allowed:
        raise ApiError(403, "forbidden", f"model: only admins may switch to {name!r} (see --user-models)", "model")
    options = params.get("model_options") or {}
    if options:
        from sdrest.api.schemas.generation import MODEL_COMPONENTS, MODEL_OPTIONS

        names = {option: name for name, (option, _) in MODEL_COMPONENTS.items()}
        names.update({target: name for name, targets in MODEL_OPTIONS.items() for target in option_targets(targets)})
        field = next((names[o] for o in options if o in names), "model")
        raise ApiError(
            403, "forbidden", f"{field}: changes the model everyone shares: admins only (see --user-models)", field
        )


def check_queue_room(svc: Services, priority: int = 0) -> None:
    """Refuse a new job the queue has no room for, globally or for this caller (users take turns
    within a priority, and only admins may jump the queue with a positive priority)."""
    principal = current_principal()
    if priority > 0 and principal is not None and not principal.sees_everything:
        raise ApiError(403, "forbidden", "priority: only admins may give a positive priority", "priority")
    if svc.store.counts().get("queued", 0) >= svc.settings.max_queue:
        raise ApiError(
            503, "queue_full", f"the queue is full ({svc.settings.max_queue} jobs)", headers={"Retry-After": "30"}
        )
    limit = svc.settings.max_queued_per_user
    if principal is not None and principal.name is not None and svc.store.queued_count(principal.name) >= limit:
        raise ApiError(
            429,
            "too_many_queued",
            f"you already have {limit} jobs waiting; wait for some to finish",
            headers={"Retry-After": "30"},
        )


def _flag(name: str, default: bool) -> bool:
    """A submission's boolean query parameter (``?wait=``, ``?base64=``); ``default`` if absent."""
    value = getattr(parse_query(SubmitQuery, request.args), name)
    return default if value is None else bool(value)


__all__ = ["bp"]
