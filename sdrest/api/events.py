"""Server-Sent Events: live job events, replayable with ``Last-Event-ID``.

Persisted events (queued, started, completed, failed, cancelled) carry an ``id:`` so a client
that reconnects with ``Last-Event-ID`` (header, or ``?last_event_id=``) gets what it missed.
Progress and preview events are ephemeral (no id): they are only for whoever is listening.

Each open stream holds one server thread. Streams (and ``wait`` requests) share a bounded
number of slots, beyond which new ones get 429, so ordinary requests never starve.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context

from sdrest.api.errors import ApiError
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.jobs import EventsQuery
from sdrest.api.slots import hold_slot
from sdrest.api.views import API, job_or_404, job_view, running_view
from sdrest.auth.web import visible_owners
from sdrest.errors import StoreUnavailable
from sdrest.jobs import Event, Subscription
from sdrest.services import Services, services

bp = Blueprint("events", __name__, url_prefix=API)

#: Seconds between keep-alive comments (they also detect clients that went away).
HEARTBEAT = 15.0
TERMINAL = ("completed", "failed", "cancelled")
#: An event stream: `event:` a type, `data:` JSON (see docs/api.md, Events), `id:` when persisted.
_STREAM = Content(("text/event-stream",), {"type": "string"}, "Server-Sent Events")


@bp.get("/events")
@api_doc(query=EventsQuery, responses={200: _STREAM}, errors=(400, 429))
def all_events() -> Any:
    """Events of every job the caller may see."""
    svc = services()
    return _stream(svc, job_id=None)


@bp.get("/generate/<job_id>/events")
@api_doc(query=EventsQuery, responses={200: _STREAM}, errors=(400, 404, 429))
def job_events(job_id: str) -> Any:
    """Events of one job: its current state first, then changes until it ends."""
    svc = services()
    job_or_404(svc.store, job_id)
    return _stream(svc, job_id=job_id)


def _last_event_id() -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID: must be an integer", "Last-Event-ID") from None
    if value < 0:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID: must be >= 0", "Last-Event-ID")
    return value


def _stream(svc: Services, job_id: str | None) -> Response:
    last_id = _last_event_id()
    give_back = hold_slot(svc, "too_many_streams", "close one first")
    try:
        subscription = svc.bus.subscribe(last_event_id=last_id, job_id=job_id, owners=visible_owners())
    except BaseException:
        give_back()
        raise
    release = _Release(subscription, give_back)
    heartbeat = float(current_app.config.get("SDREST_SSE_HEARTBEAT", HEARTBEAT))

    def generate() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            if job_id is not None:
                job = svc.store.get(job_id)
                if job is not None:
                    yield _format("state", job_view(job, svc.store, svc.settings), None)
                    if job.status.finished and last_id is None:
                        return
            yield from _follow(svc, subscription, job_id, heartbeat)
        except StoreUnavailable:
            # The database went away mid-stream (the store logs that once): end the stream
            # quietly; the client reconnects with Last-Event-ID and misses no persisted event.
            return
        finally:
            release()

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    # A body that is never iterated (HEAD, a client gone before the first byte) never runs the
    # generator's finally; the WSGI close() always comes, so the slot is released there too.
    response.call_on_close(release)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # let reverse proxies stream it
    return response


class _Release:
    """Close a stream's subscription and give back its slot, exactly once."""

    def __init__(self, subscription: Subscription, give_back: Callable[[], None]) -> None:
        self._subscription = subscription
        self._give_back = give_back
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._subscription.close()
        self._give_back()


def _follow(svc: Services, subscription: Subscription, job_id: str | None, heartbeat: float) -> Iterator[str]:
    quiet_since = time.monotonic()
    while not subscription.closed:
        events = subscription.next_batch(timeout=min(1.0, heartbeat))
        if not events:
            if time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            continue
        quiet_since = time.monotonic()
        for event in events:
            yield _format(event.type, _payload(svc, event), event.id)
            if job_id is not None and event.type in TERMINAL:
                return


def _payload(svc: Services, event: Event) -> dict[str, Any]:
    payload = {"job_id": event.job_id, "time": event.created_at, **event.data}
    if event.type == "queue":
        # The running job is someone's: others learn only that the worker is busy.
        payload.update(running_view(payload.get("running"), payload.pop("running_owner", None)))
    if event.type in TERMINAL and event.job_id:
        job = svc.store.get(event.job_id)
        if job is not None:
            payload["job"] = job_view(job, svc.store, svc.settings)
    return payload


def _format(event_type: str, data: dict[str, Any], event_id: int | None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event_type}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"
