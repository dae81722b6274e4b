"""AUTOMATIC1111's API under ``/sdapi/v1``: generation, progress, interrupt, options.

Each txt2img/img2img call is an ordinary sdrest job owned by the caller; the call waits for it
(see :mod:`sdrest.api.compat.jobs`). Progress, interrupt and skip act on the caller's own jobs
(admins: on any), as A1111's single-user server would on "the" job. The model lists and tools
live in :mod:`sdrest.api.compat.a1111_tools`.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from sdrest.api.compat import errors
from sdrest.api.compat.a1111_generate import a1111_error, answer, translate
from sdrest.api.compat.a1111_schemas import (
    A1111Error,
    GenerationResponse,
    Img2ImgRequest,
    OptionsRequest,
    ProgressResponse,
    Txt2ImgRequest,
)
from sdrest.api.compat.jobs import submit_generation, wait_for
from sdrest.api.compat.names import find_checkpoint
from sdrest.api.compat.state import CompatState
from sdrest.api.errors import ApiError
from sdrest.api.generate import CAPABILITY_WAIT, cancel, check_queue_room, waiting_slot
from sdrest.api.jobparams import find_model, model_params
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.operation import DocDefaults
from sdrest.auth.web import current_principal, owner_for_new_jobs
from sdrest.jobs import Job, JobStatus
from sdrest.models.types import ModelType
from sdrest.services import Services, services

PREFIX = "/sdapi/v1"
bp = Blueprint("a1111", __name__, url_prefix=PREFIX)
errors.install(bp, errors.a1111_body)

TAGS = ("sdapi",)
_ERRORS: DocDefaults = {"error_model": A1111Error, "tags": TAGS}
_ANY_JSON = Content(schema={"type": "object"})
_NULL = Content(schema={"type": "null"})

#: Options every GET answers with, A1111's defaults (what sdrest applies is in docs/compat.md).
DEFAULT_OPTIONS: dict[str, Any] = {
    "CLIP_stop_at_last_layers": 1,
    "samples_format": "png",
    "jpeg_quality": 80,
    "eta_ancestral": 1.0,
    "enable_pnginfo": True,
    "live_previews_enable": True,
    "show_progress_every_n_steps": 1,
    "sd_checkpoints_limit": 1,
}


def compat_state() -> CompatState:
    return current_app.extensions["sdrest.compat"]


@bp.post("/txt2img")
@api_doc(
    request=Txt2ImgRequest,
    responses={200: GenerationResponse},
    errors=(400, 404, 409, 415, 422, 429, 503),
    form=False,
    **_ERRORS,
)
def txt2img() -> Any:
    """Text to image (an sdrest job; the call waits for it and cancels it if the client leaves)."""
    return _generate(Txt2ImgRequest)


@bp.post("/img2img")
@api_doc(
    request=Img2ImgRequest,
    responses={200: GenerationResponse},
    errors=(400, 404, 409, 415, 422, 429, 503),
    form=False,
    **_ERRORS,
)
def img2img() -> Any:
    """Image to image; with ``mask``, inpainting."""
    return _generate(Img2ImgRequest)


def _generate(model: type[Txt2ImgRequest] | type[Img2ImgRequest]) -> Any:
    svc = services()
    body = errors.parse(model, errors.body_of(request))
    if not svc.supervisor.wait_ready(CAPABILITY_WAIT):
        raise ApiError(503, "worker_unavailable", "the generation worker has not started", headers={"Retry-After": "5"})
    state = compat_state()
    try:
        translation = translate(svc, body, state.options())
        with waiting_slot(svc, True):
            job = submit_generation(translation.fields, translation.mode)
            job = wait_for(svc, job)
    except ApiError as exc:
        raise a1111_error(exc) from None
    if job.status is JobStatus.FAILED:
        error = job.error or {}
        raise ApiError(
            500,
            str(error.get("code") or "job_failed"),
            f"job {job.id} failed: {error.get('message') or 'unknown error'}",
        )
    return jsonify(answer(svc, job, body, translation, stopped=state.stopped(job.id)))


# --- progress, interrupt, skip ---------------------------------------------------------------


@bp.get("/progress")
@api_doc(responses={200: ProgressResponse}, **_ERRORS)
def progress() -> Any:
    """The caller's running job (admins: any): progress, ETA, a live preview (?skip_current_image=true: none)."""
    svc = services()
    active = _active_jobs(svc)
    running = next((job for job in active if job.status is JobStatus.RUNNING), None)
    current = running or (active[0] if active else _latest_job(svc))
    steps = int(running.progress.get("steps") or 0) if running else 0
    step = int(running.progress.get("step") or 0) if running else 0
    fraction = min(1.0, step / steps) if steps else 0.0
    eta = 0.0
    if running and running.started_at and fraction > 0:
        elapsed = time.time() - running.started_at
        eta = max(0.0, elapsed / fraction - elapsed)
    skip_image = request.args.get("skip_current_image", "false").lower() in ("1", "true", "yes")
    stopped = compat_state().stopped(current.id) if current is not None else None
    preview = compat_state().preview(running.id) if running is not None and not skip_image else None
    started = (running.started_at or running.created_at) if running else None
    return jsonify(
        {
            "progress": round(fraction, 4),
            "eta_relative": round(eta, 3),
            "state": {
                "skipped": stopped == "skipped",
                "interrupted": stopped == "interrupted",
                "stopping_generation": False,
                "job": running.kind if running else "",
                "job_count": len(active),
                "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(started)) if started else "0",
                "job_no": 0,
                "sampling_step": step,
                "sampling_steps": steps,
            },
            "current_image": preview,
            "textinfo": (f"{running.progress.get('stage') or 'starting'}: job {running.id}" if running else None),
            "current_task": running.id if running else None,
        }
    )


@bp.post("/interrupt")
@api_doc(responses={200: _ANY_JSON}, **_ERRORS)
def interrupt() -> Any:
    """Stop the caller's running job (admins: the running job); its call answers with no images."""
    return _stop("interrupted")


@bp.post("/skip")
@api_doc(responses={200: _ANY_JSON}, **_ERRORS)
def skip() -> Any:
    """As interrupt: a batch is one library call in sdrest, so it cannot go on with the next image."""
    return _stop("skipped")


def _stop(how: str) -> Any:
    svc = services()
    running = next((job for job in _active_jobs(svc) if job.status is JobStatus.RUNNING), None)
    if running is not None:
        compat_state().mark_stopped(running.id, how)
        cancel(svc, running.id)
    return jsonify({})


def _owner_filter() -> str | None:
    principal = current_principal()
    if principal is None or principal.sees_everything:
        return None
    return principal.name


def _active_jobs(svc: Services) -> list[Job]:
    """Queued and running jobs the caller may see, oldest first."""
    jobs, _ = svc.store.list(
        statuses=[JobStatus.QUEUED, JobStatus.RUNNING], owner=_owner_filter(), limit=None, newest_first=False
    )
    return jobs


def _latest_job(svc: Services) -> Job | None:
    jobs, _ = svc.store.list(owner=_owner_filter(), limit=1)
    return jobs[0] if jobs else None


# --- options ---------------------------------------------------------------------------------


@bp.get("/options")
@api_doc(responses={200: _ANY_JSON}, **_ERRORS)
def get_options() -> Any:
    """A1111's options: the loaded checkpoint and VAE, and the settings sdrest applies (post them back as they are)."""
    svc = services()
    options = {**DEFAULT_OPTIONS, **compat_state().options()}
    name = _current_model(svc)
    title, sha = "", None
    if name:
        try:
            found = find_checkpoint(svc.library, name, "sd_model_checkpoint")
            title, sha = found.title, found.short_hash
        except ApiError:
            title = name
    options.update(sd_model_checkpoint=title, sd_checkpoint_hash=sha, sd_vae=_loaded_vae(svc) or "Automatic")
    return jsonify(options)


@bp.post("/options")
@api_doc(request=OptionsRequest, responses={200: _NULL}, errors=(400, 404, 409, 415, 422, 503), form=False, **_ERRORS)
def set_options() -> Any:
    """Change options; a new ``sd_model_checkpoint`` or ``sd_vae`` queues loading it (poll /progress
    until job_count is 0).

    Options sdrest does not use are ignored, as A1111 ignores unknown ones.
    """
    svc = services()
    body = errors.parse(OptionsRequest, errors.body_of(request))
    given = body.model_dump(exclude_none=True, exclude={"sd_model_checkpoint", "sd_vae"})
    stored = {k: v for k, v in given.items() if k in DEFAULT_OPTIONS}
    current, loaded_vae = _current_model(svc), _loaded_vae(svc)
    name, vae = current, loaded_vae
    if body.sd_model_checkpoint:
        name = find_checkpoint(svc.library, body.sd_model_checkpoint, "sd_model_checkpoint").entry.name
    if body.sd_vae is not None:
        vae = (
            None
            if body.sd_vae.strip().lower() in NO_VAE
            else find_model(svc.library, ModelType.VAE, body.sd_vae, "sd_vae").name
        )
    # Posting the options back unchanged must not reload (nothing loaded yet: the default loads).
    if (name, vae) != (current, loaded_vae):
        if name is None:
            raise ApiError(
                409, "no_model_loaded", "sd_vae: no model to load it with; set sd_model_checkpoint", "sd_vae"
            )
        queue_load(svc, name, vae=vae)
    if stored:
        compat_state().set_options(stored)
    return jsonify(None)


#: sd_vae values meaning "the checkpoint's own VAE".
NO_VAE = ("", "automatic", "none")


def _current_model(svc: Services) -> str | None:
    """The loaded checkpoint, else the one the next job loads."""
    return svc.supervisor.state().loaded_model or svc.supervisor.default_model


def _loaded_vae(svc: Services) -> str | None:
    """The name of the VAE loaded with the model (None: the checkpoint's own)."""
    shown = svc.supervisor.state().loaded_options.get("vae")  # a file name
    if not shown:
        return None
    return next((e.name for e in svc.library.entries(ModelType.VAE) if e.path.name == shown), shown)


def queue_load(svc: Services, name: str | None, *, vae: str | None = None) -> Job:
    """A model load (``name``, with ``vae``) or unload (None) job, ordered with the generation jobs."""
    check_queue_room(svc)
    if name is None:
        job = svc.store.create("unload_model", {"mode": "unload"}, owner=owner_for_new_jobs())
    else:
        spec = model_params({"model": name, **({"vae": vae} if vae else {})}, svc.library)
        job = svc.store.create("load_model", {"mode": "load", **spec}, owner=owner_for_new_jobs())
    svc.supervisor.notify()
    return job
