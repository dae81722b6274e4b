"""The audit trail of authentication attempts: a row in the auth store (for the admin API) and
one structured line on the ``sdrest.audit`` logger (for log shippers and ``journalctl``).

The line is a JSON object, so a username or reason that a client chose (which may contain
spaces, quotes or newlines) cannot forge extra fields or extra log lines. This function takes
no password, token or key argument at all: nothing secret can end up in the trail by mistake.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdrest.auth.store import AuthStore

log = logging.getLogger("sdrest.audit")
#: Problems of the audit machinery itself go elsewhere, so ``sdrest.audit`` carries only audit lines.
_errors = logging.getLogger("sdrest.auth")

_LEVELS = {"success": logging.INFO, "failure": logging.WARNING, "throttled": logging.WARNING}


def format_line(
    *,
    method: str,
    username: str | None,
    client_ip: str | None,
    outcome: str,
    reason: str | None,
    when: float | None = None,
) -> str:
    """The audit line: ``auth {"time": ..., "method": ..., "user": ..., "ip": ..., ...}``."""
    now = time.time() if when is None else when
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "method": method,
        "user": username,
        "ip": client_ip,
        "outcome": outcome,
        "reason": reason,
    }
    return "auth " + json.dumps(entry, ensure_ascii=True)


def log_attempt(
    store: AuthStore | None,
    *,
    method: str,
    username: str | None,
    client_ip: str | None,
    outcome: str,
    reason: str | None = None,
) -> None:
    """Record one attempt in *store* (when given) and log it. A failure to write the row is
    logged, not raised: an audit hiccup must not turn a login into a 500. An unknown *outcome*
    is a programming error and raises ValueError."""
    if outcome not in _LEVELS:
        raise ValueError(f"outcome must be one of {', '.join(_LEVELS)}")
    line = format_line(method=method, username=username, client_ip=client_ip, outcome=outcome, reason=reason)
    log.log(
        _LEVELS[outcome],
        "%s",
        line,
        extra={"audit": {"method": method, "user": username, "ip": client_ip, "outcome": outcome, "reason": reason}},
    )
    if store is not None:
        try:
            store.record_attempt(method, username, client_ip, outcome, reason)
        except Exception:  # noqa: BLE001 - see docstring
            _errors.exception("could not record the authentication attempt in the auth store")


class AuditLimiter:
    """At most ``per_minute`` audited rejections per client a minute (more are refused all the
    same, just not recorded), for at most ``max_clients`` clients at once: a flood of bad tokens
    must not grow the audit table without bound."""

    def __init__(
        self, per_minute: int = 20, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, client: str | None) -> bool:
        key = client or "?"
        now = self._clock()
        with self._lock:
            start, count = self._windows.pop(key, (now, 0))
            if now - start >= 60.0:
                start, count = now, 0
            self._windows[key] = (start, count + 1)
            while len(self._windows) > self.max_clients:
                self._windows.popitem(last=False)
            return count < self.per_minute
