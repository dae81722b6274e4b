"""Slots of long requests: event streams and requests that wait for their job.

Each holds a server thread for as long as it lasts, so both draw on one bounded pool
(``--max-event-streams``, :attr:`Services.long_requests`) and, per user, on one count
(``--max-streams-per-user``, and never all of the pool: one slot is left for the others): one
user's waiting ``/sdapi/v1/txt2img`` calls and event streams
together cannot take every slot and leave another user's requests answering 429.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import current_app

from sdrest.api.errors import ApiError
from sdrest.auth.throttle import client_bucket
from sdrest.auth.web import client_ip, current_principal
from sdrest.services import Services

__all__ = ["SlotCounts", "hold_slot", "slot_owner"]


class SlotCounts:
    """Long requests open per user. Thread-safe; kept in ``app.extensions["sdrest.streams"]``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def acquire(self, user: str | None, limit: int) -> bool:
        if user is None:
            return True
        with self._lock:
            if self._open.get(user, 0) >= limit:
                return False
            self._open[user] = self._open.get(user, 0) + 1
            return True

    def release(self, user: str | None) -> None:
        if user is None:
            return
        with self._lock:
            left = self._open.get(user, 0) - 1
            if left > 0:
                self._open[user] = left
            else:
                self._open.pop(user, None)


def slot_owner() -> str | None:
    """Whose slots a new long request counts against: the user; for anonymous guests (who share
    one name) their address, an IPv6 one by its /64 as the login throttle counts it (one host
    holds a whole /64); None with --auth none (one user: the global bound is enough)."""
    principal = current_principal()
    if principal is None or principal.method == "none":
        return None
    if principal.method == "guest":
        return "address:" + client_bucket(client_ip())
    return f"user:{principal.name}"


def hold_slot(svc: Services, code: str, what: str) -> Callable[[], None]:
    """Take a slot for the current request (429 ``code`` naming ``what`` when the user's or the
    server's are all taken); returns the function that gives it back (call it once)."""
    counts: SlotCounts = current_app.extensions.setdefault("sdrest.streams", SlotCounts())
    user = slot_owner()
    # One slot always stays free for someone else, whatever --max-streams-per-user says.
    limit = min(svc.settings.max_streams_per_user, max(1, svc.settings.max_event_streams - 1))
    if not counts.acquire(user, limit):
        raise ApiError(
            429,
            code,
            f"you have {limit} event streams and waiting requests open already; {what}",
            headers={"Retry-After": "5"},
        )
    if not svc.long_requests.acquire(blocking=False):
        counts.release(user)
        raise ApiError(
            429, code, f"too many event streams and waiting requests are open; {what}", headers={"Retry-After": "5"}
        )

    def release() -> None:
        svc.long_requests.release()
        counts.release(user)

    return release
