"""The one password login, shared by ``POST /auth/login`` and HTTP Basic (A1111 clients):
throttled before the slow check, the account's canonical name, the reserved guest name, and one
audit row per attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdrest.auth.audit import log_attempt
from sdrest.auth.errors import TooManyAttempts
from sdrest.auth.rules import Principal
from sdrest.auth.store import GUEST_NAME

if TYPE_CHECKING:
    from sdrest.auth.web import AuthServices


def login_method(auth: str) -> str:
    """The method a login under ``--auth auth`` uses (and its tokens name): optional's users are jwt's."""
    return "jwt" if auth in ("jwt", "optional") else auth


def password_login(
    services: AuthServices, method: str, username: str, password: str, client_ip: str, *, how: str = ""
) -> tuple[Principal | None, str]:
    """The principal of a correct ``username``/``password`` by ``method`` (jwt, unix or pam),
    or ``(None, reason)`` for a refused one; :class:`TooManyAttempts` while the user or client
    is locked out. ``how`` is the audit row's note on success (``"basic"``).

    The attempt counts as a failure from before the password check until it succeeds
    (``Throttle.begin``), so parallel guesses cannot all pass while the first ones still hash.
    """
    store = services.store
    wait = services.throttle.begin(username, client_ip)
    if wait is not None:
        log_attempt(
            store,
            method=method,
            username=username,
            client_ip=client_ip,
            outcome="throttled",
            reason="too many failures",
        )
        raise TooManyAttempts(
            "too_many_attempts",
            "too many failed logins; try again later",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    role, reason = verify_login(services, method, username, password)
    if role is not None and method in ("unix", "pam"):
        # One account, one identity (and one owner of its jobs), however PAM let it be spelt.
        from sdrest.auth.system import canonical_name  # lazy: pwd/grp and PAM only for these methods

        username = canonical_name(username)
    if username.casefold() == GUEST_NAME:  # the shared identity of anonymous visitors
        role, reason = None, "the name guest is reserved"
    if role is None:
        log_attempt(store, method=method, username=username, client_ip=client_ip, outcome="failure", reason=reason)
        return None, reason
    services.throttle.success(username, client_ip, begun=True)
    log_attempt(store, method=method, username=username, client_ip=client_ip, outcome="success", reason=how)
    return Principal(username, role, method), ""


def verify_login(services: AuthServices, method: str, username: str, password: str) -> tuple[str | None, str]:
    """The role of a correct login by ``method`` (jwt, unix or pam), or (None, reason)."""
    settings = services.settings
    if method == "jwt":
        user = services.store.check_password(username, password)  # None also for disabled users
        if user is None:
            return None, "wrong user name or password"
        return user.role, ""
    from sdrest.auth.system import in_group, pam_authenticate, unix_authenticate, user_role_from_groups

    if method == "unix":
        ok, reason = unix_authenticate(username, password, settings.auth_group)
    else:
        ok, reason = pam_authenticate(username, password, settings.pam_service)
        if ok and settings.auth_group:
            ok, reason = in_group(username, settings.auth_group), "not in the allowed group"
    if not ok:
        return None, reason or "authentication failed"
    return user_role_from_groups(username, settings.admin_group), ""
