"""Brute-force throttling of logins, by client IP and by username.

Two independent counters per attempt. The client IP's (an IPv6 one by its /64) locks after
``max_failures`` failures within ``window`` seconds: it stops one client guessing one account,
or spraying many. The username's locks only at a ceiling, :data:`USER_CEILING` times that: it
stops a guess at one account spread over many addresses, while five wrong passwords typed by
someone else no longer lock the account (an admin's included) for everyone. Attempts from this
machine itself (loopback addresses) never count against the username, so an admin at the
server can always log in. A locked key is locked for ``lockout`` seconds; while either key of
an attempt is locked, :meth:`Throttle.check` returns the seconds left, which the HTTP layer
sends as ``Retry-After`` without checking the password at all. Without ``--trusted-proxy``,
every client behind a proxy shares the proxy's address, and so its IP counter.

A success clears the username's counter only: a client that guesses many accounts from one IP
must not be able to reset its IP counter by logging into its own account in between.

Memory is bounded: at most ``max_entries`` keys are tracked; stale keys (no failure inside the
window, not locked) go first, then the least recently touched unlocked ones, locked ones last.
State is in memory only, so a restart forgets it -- acceptable for a rate limit, and it keeps a lockout from outliving a
misconfiguration. It is also per process: nodes sharing a PostgreSQL store each count on their own, so N nodes behind
a load balancer allow up to N times the failures (docs/scale-out.md says why that is accepted: sharing the counters
would cost a database write per failed login).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


def _loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def client_bucket(ip: str) -> str:
    """The throttling key of a client address: IPv6 clients by /64 (one host usually owns a
    whole /64, so counting single addresses would let it rotate through 2**64 of them)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


#: The username's counter locks at this many times ``max_failures`` (see the module docstring).
USER_CEILING = 10


class Throttle:
    """Thread-safe failure counter with lockout; see the module docstring."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        if max_failures < 1 or window <= 0 or lockout <= 0 or max_entries < 2:
            raise ValueError("max_failures >= 1, window > 0, lockout > 0 and max_entries >= 2 required")
        self.max_failures = max_failures
        self.window = float(window)
        self.lockout = float(lockout)
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    @staticmethod
    def _keys(username: str | None, ip: str | None) -> list[tuple[str, str]]:
        keys = []
        if username and not _loopback(ip):
            # PAM and many NSS back-ends take "Alice" and " alice" for the same account.
            keys.append(("user", username.strip().casefold()))
        if ip:
            keys.append(("ip", client_bucket(ip)))
        return keys

    def _limit(self, key: tuple[str, str]) -> int:
        return self.max_failures * USER_CEILING if key[0] == "user" else self.max_failures

    def begin(self, username: str | None, ip: str | None) -> float | None:
        """Start an attempt: the seconds to wait if either key is locked, else None, and then the
        attempt already counts as a failure until :meth:`success` settles it.

        Counting before the (slow) password check means concurrent guesses cannot all pass the
        check while the first ones are still hashing: the limit holds for parallel attempts too.
        """
        now = self._clock()
        with self._lock:
            keys = self._keys(username, ip)
            wait = 0.0
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    continue
                self._prune(entry, now)
                if entry.locked_until <= now and len(entry.failures) >= self._limit(key):
                    entry.locked_until = now + self.lockout
                    entry.failures.clear()
                if entry.locked_until > now:
                    wait = max(wait, entry.locked_until - now)
            if wait > 0:
                return wait
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry()
                else:
                    self._entries.move_to_end(key)
                entry.failures.append(now)
            self._evict(now)
        return None

    def _prune(self, entry: _Entry, now: float) -> None:
        while entry.failures and entry.failures[0] <= now - self.window:
            entry.failures.popleft()

    def check(self, username: str | None, ip: str | None) -> float | None:
        """Seconds until an attempt for *username* from *ip* is allowed again, or None if it is
        allowed now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(username, ip):
                entry = self._entries.get(key)
                if entry is not None and entry.locked_until > now:
                    wait = max(wait, entry.locked_until - now)
        return wait if wait > 0 else None

    def failure(self, username: str | None, ip: str | None) -> None:
        """Count one failed attempt against both keys; lock a key that reaches the limit."""
        now = self._clock()
        with self._lock:
            for key in self._keys(username, ip):
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry()
                else:
                    self._entries.move_to_end(key)
                if entry.locked_until > now:
                    continue  # already locked: the lockout is not extended by hammering
                self._prune(entry, now)
                entry.failures.append(now)
                if len(entry.failures) >= self._limit(key):
                    entry.locked_until = now + self.lockout
                    entry.failures.clear()
            self._evict(now)  # after counting, so the entries just touched are not "stale"

    def success(self, username: str | None, ip: str | None, *, begun: bool = False) -> None:
        """A successful login: forget *username*'s failures (the IP's stay; see module doc).
        ``begun``: the attempt was counted by :meth:`begin`; its count against the IP is taken back."""
        keys = dict(self._keys(username, ip))
        with self._lock:
            user_key = ("user", username.strip().casefold()) if username else None  # from any address
            if user_key is not None:
                entry = self._entries.get(user_key)
                if entry is not None and (begun or entry.locked_until <= self._clock()):
                    del self._entries[user_key]
            if begun and "ip" in keys:
                entry = self._entries.get(("ip", keys["ip"]))
                if entry is not None and entry.failures:
                    entry.failures.pop()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _evict(self, now: float) -> None:
        if len(self._entries) <= self.max_entries:
            return
        for key in list(self._entries):
            entry = self._entries[key]
            self._prune(entry, now)
            if not entry.failures and entry.locked_until <= now:
                del self._entries[key]
        # Still full of live entries (many attackers): drop the least recently touched down to
        # 90%, so the scan above runs once per ~10% of capacity rather than on every new key.
        # Unlocked entries go before locked ones, so a flood of fresh keys cannot wash out an
        # active lockout.
        target = self.max_entries - max(1, self.max_entries // 10)
        for key in [k for k, e in self._entries.items() if e.locked_until <= now]:
            if len(self._entries) <= target:
                return
            del self._entries[key]
        while len(self._entries) > target:
            self._entries.popitem(last=False)
