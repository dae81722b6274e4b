"""HTTP Basic authentication for A1111 clients (A1111's ``--api-auth user:pass`` style).

The user name and password go through the login's own path
(:func:`~sdrest.auth.login.password_login`: jwt users, unix accounts or PAM, whichever ``--auth``
says; the throttle counting each attempt before the slow check, the canonical account name, the
reserved guest name, the audit log). Basic clients send the password with every request (``/progress`` is polled a few
times a second) and a check costs a deliberately slow scrypt or PAM call, so a successful check
is remembered for :data:`TTL` seconds, keyed by an HMAC of the credentials under a key that lives
only in this process (the password itself is never kept). A removed user or changed password
therefore stops working within that time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from sdrest.auth.audit import log_attempt
from sdrest.auth.errors import NotAuthenticated
from sdrest.auth.login import login_method, password_login
from sdrest.auth.rules import Principal

if TYPE_CHECKING:
    from sdrest.auth.web import AuthServices

#: Seconds a verified user name and password are trusted without checking again.
TTL = 60.0
#: Credentials remembered at most (the oldest are forgotten first).
MAX_ENTRIES = 256
#: --auth methods whose users have passwords.
PASSWORD_METHODS = ("jwt", "unix", "pam", "optional")


class BasicCredentialCache:
    """Recently verified credentials: HMAC(credentials) -> (principal, expiry)."""

    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def _digest(self, username: str, password: str) -> bytes:
        return hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def get(self, username: str, password: str) -> Principal | None:
        digest = self._digest(username, password)
        with self._lock:
            found = self._entries.get(digest)
            if found is None or found[1] < time.monotonic():
                self._entries.pop(digest, None)
                return None
            return found[0]

    def put(self, username: str, password: str, principal: Principal) -> None:
        with self._lock:
            self._entries[self._digest(username, password)] = (principal, time.monotonic() + self._ttl)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


def basic_principal(
    encoded: str, services: AuthServices, auth_method: str, client_ip: str, cache: BasicCredentialCache
) -> Principal:
    """The principal of ``Authorization: Basic <encoded>``; else :class:`NotAuthenticated` (401)
    or :class:`TooManyAttempts` (429)."""
    if auth_method not in PASSWORD_METHODS:
        raise _malformed(services, client_ip, f"--auth {auth_method} has no passwords")
    try:
        username, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        username, sep, password = "", "", ""
    if not sep or not username or not password:
        raise _malformed(services, client_ip, "malformed Basic credentials")
    cached = cache.get(username, password)
    if cached is not None:
        return cached
    method = login_method(auth_method)
    principal, reason = password_login(services, method, username, password, client_ip, how="basic")
    if principal is None:
        raise _refused(reason)
    cache.put(username, password, principal)
    return principal


def _malformed(services: AuthServices, client_ip: str, reason: str) -> NotAuthenticated:
    # No user name to throttle: bounded per client like bad bearer tokens, so a loop of junk
    # headers cannot grow the audit log without bound.
    if services.audit_limit.allow(client_ip):
        log_attempt(
            services.store, method="basic", username=None, client_ip=client_ip, outcome="failure", reason=reason
        )
    return _refused(reason)


def _refused(reason: str) -> NotAuthenticated:
    return NotAuthenticated("unauthorized", reason, headers={"WWW-Authenticate": 'Basic realm="sdrest"'})
