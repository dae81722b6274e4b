"""Compatibility calls as ordinary sdrest jobs: submit, wait (cancelling on disconnect), answer.

A1111 and OpenAI clients expect the image in the answer to the call that asked for it. The
call therefore waits, holding one of the bounded long-request slots (so ordinary requests always
find a thread), and checks every fraction of a second whether its client is still there: Waitress
notices a closed connection (``channel_request_lookahead`` in :mod:`sdrest.server`) and reports
it through ``environ["waitress.client_disconnected"]``. A client that went away gets its job
cancelled, unless the server runs with ``--keep-on-disconnect``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request

from sdrest.api.errors import ApiError
from sdrest.api.generate import CAPABILITY_WAIT, check_queue_room
from sdrest.api.jobparams import InputFiles, generation_params, read_values, upscale_params
from sdrest.api.schemas.generation import MODE_REQUESTS, UpscaleRequest
from sdrest.auth.web import owner_for_new_jobs
from sdrest.jobs import Job, JobStatus
from sdrest.services import Services, services

log = logging.getLogger("sdrest.compat")

#: How often a waiting call checks whether its client is still connected.
POLL_SECONDS = 0.25


class ClientGone(Exception):
    """The client closed its connection while its call waited (nobody reads the answer)."""


@contextmanager
def waiting_slot(svc: Services) -> Iterator[None]:
    """One of the bounded long-request slots, taken before the job is created: a 429 never
    leaves behind a job the client does not know about."""
    if not svc.long_requests.acquire(blocking=False):
        raise ApiError(429, "too_many_waiting", "too many requests are waiting; nothing was queued: retry later",
                       headers={"Retry-After": "5"})
    try:
        yield
    finally:
        svc.long_requests.release()


def submit_generation(fields: dict[str, Any], mode: str, *, from_form: bool = False) -> Job:
    """Queue a txt2img/img2img/inpaint job from sdrest request fields, as /api/v1/generate does
    (``from_form``: values are form text, converted by each field's type)."""
    svc = services()
    if not svc.supervisor.wait_ready(CAPABILITY_WAIT):
        raise ApiError(503, "worker_unavailable", "the generation worker has not started",
                       headers={"Retry-After": "5"})
    values = read_values(MODE_REQUESTS[mode], fields, from_form=from_form, mode=mode,
                         capabilities=svc.supervisor.capabilities)
    return _create(svc, mode, values, lambda inputs: generation_params(
        values, mode, svc.settings, inputs, svc.supervisor.default_model, svc.library))


def submit_upscale(fields: dict[str, Any]) -> Job:
    """Queue an ESRGAN upscale job from sdrest request fields, as /api/v1/upscale does."""
    svc = services()
    values = read_values(UpscaleRequest, fields, from_form=False)
    return _create(svc, "upscale", values, lambda inputs: upscale_params(values, svc.settings, inputs, svc.library))


def _create(svc: Services, kind: str, values: dict[str, Any], params: Callable[[InputFiles], dict[str, Any]]) -> Job:
    check_queue_room(svc, values.get("priority") or 0)
    inputs = InputFiles(svc.settings)
    try:
        job = svc.store.create(kind, params(inputs), owner=owner_for_new_jobs(), priority=values.get("priority", 0))
    except BaseException:
        inputs.discard()
        raise
    svc.supervisor.notify()
    return job


def cancel(svc: Services, job_id: str) -> bool:
    """Cancel a queued or running job (the worker stops within a sampling step); False if it
    had already finished."""
    before = svc.store.cancel(job_id)
    if before is None:
        return False
    if before.status is JobStatus.RUNNING:
        svc.supervisor.cancel_running(job_id)
    else:
        svc.supervisor.announce_queue()
    return True


def wait_for(svc: Services, job: Job) -> Job:
    """Block until ``job`` finishes; cancel it (unless --keep-on-disconnect) and raise
    :class:`ClientGone` if the client disconnects; 504 after --wait-timeout (the job goes on)."""
    disconnected: Callable[[], bool] = request.environ.get("waitress.client_disconnected") or (lambda: False)
    deadline = time.monotonic() + svc.settings.wait_timeout
    with svc.bus.subscribe(last_event_id=None, job_id=job.id) as subscription:
        while True:
            current = svc.store.get(job.id)
            if current is None:
                raise ApiError(410, "job_deleted", f"job {job.id} was deleted while running")
            if current.status.finished:
                return current
            if disconnected():
                if not svc.settings.keep_on_disconnect and cancel(svc, job.id):
                    log.info("client of job %s disconnected: job cancelled", job.id)
                raise ClientGone(job.id)
            if time.monotonic() >= deadline:
                raise ApiError(504, "still_running", f"job {job.id} is still {current.status.value} after "
                               f"{svc.settings.wait_timeout:g} s; it goes on: GET /api/v1/jobs/{job.id}", "job_id")
            subscription.next_batch(timeout=POLL_SECONDS)
