"""Log in, refresh, profile, log out, and the audit log of attempts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, jsonify, request

from sdrest.api.errors import ApiError
from sdrest.api.jobs import int_arg
from sdrest.api.schemas import api_doc
from sdrest.api.schemas.auth import (
    AttemptList,
    AttemptsQuery,
    LoginRequest,
    LoginView,
    LogoutRequest,
    LogoutView,
    ProfileView,
    RefreshView,
)
from sdrest.api.schemas.parsing import parse, read_body
from sdrest.api.views import API
from sdrest.auth.audit import log_attempt
from sdrest.auth.rules import Principal
from sdrest.auth.web import auth_services, client_ip, current_principal

bp = Blueprint("auth", __name__, url_prefix=f"{API}/auth")

#: Methods that log in with a user name and password.
PASSWORD_METHODS = ("jwt", "unix", "pam", "optional")


@bp.post("/login")
@api_doc(request=LoginRequest, responses={200: LoginView}, errors=(400, 401, 413, 415, 422, 429))
def login() -> Any:
    """Check a user name and password (jwt users, unix accounts or PAM) and issue tokens."""
    services = auth_services()
    settings = services.settings
    if settings.auth not in PASSWORD_METHODS:
        raise ApiError(400, "login_not_used", f"--auth {settings.auth} has no login")
    from flask_jwt_extended import (
        create_access_token,
        create_refresh_token,
        set_access_cookies,
        set_refresh_cookies,
    )

    data, from_form = read_body(request)
    body = parse(LoginRequest, data, from_form=from_form)
    username, password, ip = body.username, body.password, client_ip()
    method = "jwt" if settings.auth in ("jwt", "optional") else settings.auth
    wait = services.throttle.check(username, ip)
    if wait is not None:
        log_attempt(services.store, method=method, username=username, client_ip=ip, outcome="throttled",
                    reason="too many failures")
        raise ApiError(429, "too_many_attempts", "too many failed logins; try again later",
                       headers={"Retry-After": str(max(1, int(wait + 0.999)))})
    role, reason = _verify(method, username, password)
    if role is None:
        services.throttle.failure(username, ip)
        log_attempt(services.store, method=method, username=username, client_ip=ip, outcome="failure",
                    reason=reason)
        raise ApiError(401, "invalid_credentials", "wrong user name or password")
    services.throttle.success(username, ip)
    log_attempt(services.store, method=method, username=username, client_ip=ip, outcome="success", reason="")
    claims = {"role": role, "method": method}
    access = create_access_token(identity=username, additional_claims=claims)
    refresh = create_refresh_token(identity=username, additional_claims=claims)
    response = jsonify({"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                        "expires_in": settings.access_token_seconds,
                        "user": {"username": username, "role": role, "method": method}})
    if body.cookie:
        set_access_cookies(response, access)
        set_refresh_cookies(response, refresh)
    return response


@bp.post("/refresh")
@api_doc(responses={200: RefreshView}, errors=(400, 401))
def refresh() -> Any:
    """A new access token for a refresh token (header or cookie)."""
    if auth_services().settings.auth not in PASSWORD_METHODS:
        raise ApiError(400, "login_not_used", f"--auth {auth_services().settings.auth} has no tokens")
    from flask_jwt_extended import create_access_token, get_jwt, set_access_cookies

    principal = current_principal()
    if principal is None or get_jwt().get("type") != "refresh":
        raise ApiError(401, "unauthorized", "send a refresh token", headers={"WWW-Authenticate": "Bearer"})
    services = auth_services()
    _still_allowed(principal)
    access = create_access_token(identity=principal.name, additional_claims={"role": principal.role,
                                                                              "method": principal.method})
    response = jsonify({"access_token": access, "token_type": "Bearer",
                        "expires_in": services.settings.access_token_seconds})
    if request.cookies.get("refresh_token_cookie"):
        set_access_cookies(response, access)
    return response


@bp.get("/profile")
@api_doc(responses={200: ProfileView})
def profile() -> Any:
    """Who the credentials belong to."""
    principal = current_principal()
    assert principal is not None
    body: dict[str, Any] = {"username": principal.name, "role": principal.role, "method": principal.method,
                            "can_generate": principal.at_least("user") or auth_services().settings.guest_can_generate}
    if principal.method in ("jwt", "unix", "pam"):
        from flask_jwt_extended import get_jwt

        body["expires_at"] = datetime.fromtimestamp(get_jwt()["exp"], timezone.utc).isoformat()
    return jsonify(body)


@bp.post("/logout")
@api_doc(request=LogoutRequest, request_required=False, responses={200: LogoutView}, errors=(400, 415, 422))
def logout() -> Any:
    """Revoke this token (and a refresh token sent in the body or cookie); revocations persist."""
    principal = current_principal()
    services = auth_services()
    response = jsonify({"logged_out": True})
    if services.settings.auth == "none":
        return response
    from flask_jwt_extended import decode_token, get_jwt, unset_jwt_cookies

    if principal is not None and principal.method in ("jwt", "unix", "pam"):
        claims = get_jwt()
        services.store.revoke_token(claims["jti"], claims["exp"])
        data, from_form = read_body(request) if request.data or request.form else ({}, False)
        refresh_token = parse(LogoutRequest, data, from_form=from_form).refresh_token or \
            request.cookies.get("refresh_token_cookie")
        if isinstance(refresh_token, str):
            try:
                decoded = decode_token(refresh_token)
                if decoded.get("sub") == principal.name:
                    services.store.revoke_token(decoded["jti"], decoded["exp"])
            except Exception:  # noqa: BLE001 - a bad refresh token is simply not revoked
                pass
    unset_jwt_cookies(response)
    return response


@bp.get("/attempts")
@api_doc(query=AttemptsQuery, responses={200: AttemptList}, errors=(400,))
def attempts() -> Any:
    """Recent authentication attempts (admins)."""
    store = auth_services().store
    limit = int_arg("limit", 100, 1, 1000)
    offset = int_arg("offset", 0, 0, 10**9)
    return jsonify({"attempts": store.attempts(limit=limit, offset=offset,
                                               username=request.args.get("username") or None)})


def _verify(method: str, username: str, password: str) -> tuple[str | None, str]:
    """The role of a correct login, or (None, reason)."""
    services = auth_services()
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


def _still_allowed(principal: Principal) -> None:
    """A jwt user removed or disabled since the token was issued cannot refresh."""
    if principal.method != "jwt":
        return
    user = auth_services().store.get_user(principal.name or "")
    if user is None or user.disabled:
        raise ApiError(401, "unauthorized", "the user no longer exists")
