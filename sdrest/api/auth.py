"""Log in, refresh, profile, log out, and the audit log of attempts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, jsonify, request

from sdrest.api.errors import ApiError
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
from sdrest.api.schemas.parsing import parse, parse_query, read_body
from sdrest.api.views import API
from sdrest.auth.login import login_method, password_login
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
    if from_form:  # a form is what a cross-site page can post without a preflight
        raise ApiError(415, "unsupported_media_type", "login takes a JSON body (application/json)", "Content-Type")
    body = parse(LoginRequest, data, from_form=from_form)
    username, password, ip = body.username, body.password, client_ip()
    method = login_method(settings.auth)
    principal, _ = password_login(services, method, username, password, ip)
    if principal is None:
        raise ApiError(401, "invalid_credentials", "wrong user name or password")
    username, role = principal.name or username, principal.role
    claims = {"role": role, "method": method, "gen": services.store.token_generation(username)}
    access = create_access_token(identity=username, additional_claims=claims)
    refresh = create_refresh_token(identity=username, additional_claims=claims)
    user = {"username": username, "role": role, "method": method}
    if body.cookie:
        # Cookie sessions keep the tokens where page scripts cannot read them: not in the body.
        response = jsonify({"token_type": "cookie", "expires_in": settings.access_token_seconds, "user": user})
        set_access_cookies(response, access)
        set_refresh_cookies(response, refresh)
        return response
    return jsonify(
        {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": settings.access_token_seconds,
            "user": user,
        }
    )


@bp.post("/refresh")
@api_doc(responses={200: RefreshView}, errors=(400, 401))
def refresh() -> Any:
    """A new access token for a refresh token (header or cookie)."""
    if auth_services().settings.auth not in PASSWORD_METHODS:
        raise ApiError(400, "login_not_used", f"--auth {auth_services().settings.auth} has no tokens")
    from flask_jwt_extended import (
        create_access_token,
        create_refresh_token,
        get_jwt,
        set_access_cookies,
        set_refresh_cookies,
    )

    principal = current_principal()
    # An API key (or nothing) is no refresh token: only a verified JWT has claims to read.
    old = get_jwt() if principal is not None and principal.method in ("jwt", "unix", "pam") else {}
    if principal is None or old.get("type") != "refresh":
        raise ApiError(401, "unauthorized", "send a refresh token", headers={"WWW-Authenticate": "Bearer"})
    services = auth_services()
    role = _current_role(principal)  # rights as they are now, not as they were at login
    claims = {"role": role, "method": principal.method, "gen": services.store.token_generation(principal.name or "")}
    access = create_access_token(identity=principal.name, additional_claims=claims)
    # Rotation: the presented refresh token is spent; using it again revokes every session.
    renewed = create_refresh_token(identity=principal.name, additional_claims=claims)
    services.store.rotate_refresh_token(old["jti"], principal.name or "", old["exp"])
    if request.cookies.get("refresh_token_cookie") and not request.headers.get("Authorization"):
        response = jsonify({"token_type": "cookie", "expires_in": services.settings.access_token_seconds})
        set_access_cookies(response, access)
        set_refresh_cookies(response, renewed)
        return response
    return jsonify(
        {
            "access_token": access,
            "refresh_token": renewed,
            "token_type": "Bearer",
            "expires_in": services.settings.access_token_seconds,
        }
    )


@bp.get("/profile")
@api_doc(responses={200: ProfileView})
def profile() -> Any:
    """Who the credentials belong to."""
    principal = current_principal()
    assert principal is not None
    body: dict[str, Any] = {
        "username": principal.name,
        "role": principal.role,
        "method": principal.method,
        "can_generate": principal.at_least("user") or auth_services().settings.guest_can_generate,
    }
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
        refresh_token = parse(LogoutRequest, data, from_form=from_form).refresh_token or request.cookies.get(
            "refresh_token_cookie"
        )
        if isinstance(refresh_token, str):
            try:
                decoded = decode_token(refresh_token, allow_expired=True)
            except Exception:  # noqa: BLE001 - any undecodable token is the same client error
                decoded = {}
            if decoded.get("type") != "refresh" or decoded.get("sub") != principal.name:
                # The access token is revoked; say that the refresh token was not.
                raise ApiError(
                    400,
                    "invalid_refresh_token",
                    "refresh_token: not a refresh token of this user; it was not revoked",
                    "refresh_token",
                )
            services.store.revoke_token(decoded["jti"], decoded["exp"])
    unset_jwt_cookies(response)
    return response


@bp.get("/attempts")
@api_doc(query=AttemptsQuery, responses={200: AttemptList}, errors=(400,))
def attempts() -> Any:
    """Recent authentication attempts (admins)."""
    store = auth_services().store
    query = parse_query(AttemptsQuery, request.args)
    return jsonify(
        {"attempts": store.attempts(limit=query.limit, offset=query.offset, username=query.username or None)}
    )


def _current_role(principal: Principal) -> str:
    """The role the account has now; 401 if it may no longer log in at all (removed, disabled,
    out of --auth-group)."""
    services = auth_services()
    name = principal.name or ""
    gone = ApiError(401, "unauthorized", "this account may no longer sign in", headers={"WWW-Authenticate": "Bearer"})
    if principal.method == "jwt":
        user = services.store.get_user(name)
        if user is None or user.disabled:
            raise gone
        return user.role
    from sdrest.auth.system import in_group, user_role_from_groups

    settings = services.settings
    if settings.auth_group and not in_group(name, settings.auth_group):
        raise gone
    return user_role_from_groups(name, settings.admin_group)
