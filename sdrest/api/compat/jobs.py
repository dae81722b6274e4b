"""Compatibility calls as ordinary sdrest jobs: submit, wait (cancelling on disconnect), answer.

A1111 and OpenAI clients expect the image in the answer to the call that asked for it. The
call therefore waits, holding one of the bounded long-request slots
(:func:`sdrest.api.generate.waiting_slot`, so ordinary requests always find a thread), and checks
a few times a second whether its client is still there: Waitress notices a closed connection
(``channel_request_lookahead`` in :mod:`sdrest.server`) and reports it through
``environ["waitress.client_disconnected"]``. A client that went away gets its job cancelled,
unless the server runs with ``--keep-on-disconnect``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import request

from sdrest.api.errors import ApiError
from sdrest.api.generate import cancel, generation_values, queue_generation, queue_upscale, upscale_values
from sdrest.errors import SdrestError
from sdrest.jobs import Job
from sdrest.services import Services, services

log = logging.getLogger("sdrest.compat")

#: How often a waiting call checks whether its client is still connected.
POLL_SECONDS = 0.25


class ClientGone(SdrestError):
    """The client closed its connection while its call waited (nobody reads the answer)."""


def submit_generation(fields: dict[str, Any], mode: str, *, from_form: bool = False) -> Job:
    """Queue a txt2img/img2img/inpaint job from sdrest request fields, by the path
    ``POST /api/v1/generate`` takes (``from_form``: values are form text, converted by type)."""
    svc = services()
    mode, values = generation_values(svc, fields, mode, from_form=from_form)
    job = queue_generation(svc, values, mode)
    svc.supervisor.notify()
    return job


def submit_upscale(fields: dict[str, Any]) -> Job:
    """Queue an ESRGAN upscale job from sdrest request fields, as ``POST /api/v1/upscale`` does."""
    svc = services()
    job = queue_upscale(svc, upscale_values(svc, fields, from_form=False))
    svc.supervisor.notify()
    return job


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
                raise ApiError(
                    504,
                    "still_running",
                    f"job {job.id} is still {current.status.value} after "
                    f"{svc.settings.wait_timeout:g} s; it goes on: GET /api/v1/jobs/{job.id}",
                    "job_id",
                )
            subscription.next_batch(timeout=POLL_SECONDS)
