"""A database outage, logged once: when it begins and when it ends.

While a database is unusable, every call that needs it fails: each request of an API node, and a
worker's claims, heartbeats and outcomes, retried every second or so. Logging each failure would
bury the log (and the one line that says why), so the plumbing of each store
(:mod:`sdrest.pgdb`, :mod:`sdrest.sqlitedb`) keeps one :class:`Outage` and reports every failure
and every success to it: the first failure of an outage is logged as a warning with its reason,
the first success after it as "available again", and nothing in between.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("sdrest.store")


class Outage:
    """Whether ``what`` (at ``where``: a path or a URL without its password) is down now."""

    def __init__(self, what: str, where: str) -> None:
        self.what = what
        self.where = where
        self._lock = threading.Lock()
        self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, reason: str) -> None:
        """A call failed for want of the database (``reason`` must hold no secret)."""
        with self._lock:
            if self._down:
                return
            self._down = True
        log.warning(
            "%s at %s is unavailable (%s): requests get 503, workers wait until it is back",
            self.what,
            self.where,
            reason,
        )

    def succeeded(self) -> None:
        """A call reached the database (cheap when it was not down: one attribute read)."""
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.warning("%s at %s is available again", self.what, self.where)
