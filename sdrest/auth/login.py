"""The one password check, shared by ``POST /auth/login`` and HTTP Basic (A1111 clients)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdrest.auth.web import AuthServices


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
