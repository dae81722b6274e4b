"""Authentication of every request, and the checks views use for ownership.

``setup_auth(app, settings)`` configures flask-jwt-extended (HS256 only, revocations kept in
the auth store, cookies HttpOnly + SameSite=Strict with CSRF protection for the browser UI)
and installs one ``before_request`` hook that resolves the caller to a :class:`Principal`
and applies the endpoint's rule from :mod:`sdrest.auth.rules` (fail closed: an endpoint
without a rule is refused).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request

from sdrest.auth.audit import AuditLimiter, log_attempt
from sdrest.auth.errors import NotAuthenticated, NotPermitted
from sdrest.auth.login import login_method
from sdrest.auth.origin import OriginPolicy
from sdrest.auth.rules import GUEST_GENERATION, PUBLIC, RULES, Principal
from sdrest.auth.store import GUEST_NAME, AuthStore, location
from sdrest.auth.throttle import Throttle
from sdrest.errors import SdrestError
from sdrest.settings import Settings

log = logging.getLogger("sdrest.auth")

API_KEY_PREFIX = "sdr_"


class AuthServices:
    """The auth state of one app: store, throttle, settings (``app.extensions["sdrest.auth"]``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = AuthStore(
            location(settings), pool_size=settings.auth_pool_size, busy_timeout=settings.store_wait_seconds
        )
        # Per process, so per node: see docs/scale-out.md (N nodes allow N times the guesses).
        self.throttle = Throttle(
            max_failures=settings.auth_max_failures,
            window=settings.auth_lockout_seconds,
            lockout=settings.auth_lockout_seconds,
        )
        self.trusted_proxies = _networks(settings.trusted_proxy)
        self.audit_limit = AuditLimiter()
        self.origins = OriginPolicy(settings)

    def close(self) -> None:
        self.store.close()


def auth_services() -> AuthServices:
    return current_app.extensions["sdrest.auth"]


#: Seconds after a refresh token's rotation during which presenting it again is refused quietly.
ROTATION_GRACE = 10.0
#: Shortest accepted signing secret, in bytes (HS256 keys shorter than its output are weak).
MIN_SECRET_BYTES = 32
#: The token signing secret's name among a shared store's secrets.
JWT_SECRET_NAME = "jwt_secret"


class SecretError(SdrestError, ValueError):
    """The token signing secret is unsafe to use."""


def jwt_secret(settings: Settings, store: AuthStore | None = None) -> str:
    """The configured secret; else, with a shared (PostgreSQL) auth *store*, the one kept in
    it, made by the first node that needed it, so that every node signs and accepts the same
    tokens; else one generated once and kept in the data dir (mode 0600).

    A stored file that another user owns or could read is refused, not trusted: whoever could
    write or read it can mint tokens for any user and role. (A shared store's secret is as safe
    as the database's password hashes: guard the database role.) Never logged."""
    if settings.jwt_secret:
        if len(settings.jwt_secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise SecretError(f"jwt_secret: must be at least {MIN_SECRET_BYTES} bytes")
        return settings.jwt_secret
    if store is not None and store.shared:
        secret = store.shared_secret(JWT_SECRET_NAME, _new_secret)
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise SecretError(f"{store.where}: the token secret must be at least {MIN_SECRET_BYTES} bytes")
        return secret
    path = settings.data_dir / "jwt_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(_new_secret())
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SecretError(
            f"{path}: refusing a token secret that is not a regular file of this user with "
            f"mode 0600 (mode {stat.S_IMODE(info.st_mode):o}, owner uid {info.st_uid}); "
            "fix it or delete it to have a new one made (which logs everybody out)"
        )
    secret = Path(path).read_text().strip()
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise SecretError(f"{path}: the token secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def _new_secret() -> str:
    return secrets.token_urlsafe(48)


def token_revoked(services: AuthServices, payload: dict[str, Any]) -> bool:
    """Whether a (validly signed) token is revoked: by its id (logout, rotation), or because
    it predates its user's current token generation (password, role or group change,
    ``sdrest users revoke-sessions``). A rotated refresh token presented again was stolen or
    leaked: every session of that user ends."""
    store = services.store
    name = str(payload.get("sub"))
    if store.is_token_revoked(payload["jti"]):
        rotated = store.rotated_at(payload["jti"]) if payload.get("type") == "refresh" else None
        # Within a few seconds of the rotation it is two tabs refreshing at once, not a thief.
        if rotated is not None and time.time() - rotated > ROTATION_GRACE:
            store.revoke_sessions(name)
            log_attempt(
                store,
                method="token",
                username=name,
                client_ip=client_ip(),
                outcome="failure",
                reason="a replaced refresh token was used again: all sessions revoked",
            )
        return True
    return int(payload.get("gen", 0)) < store.token_generation(name)


def setup_auth(app: Flask, settings: Settings) -> AuthServices:
    services = AuthServices(settings)
    app.extensions["sdrest.auth"] = services
    app.before_request(_authorize)
    if settings.auth in ("unix", "pam") and not settings.auth_group:
        log.warning(
            "SECURITY: --auth %s without --auth-group lets EVERY account of this machine sign in, "
            "service accounts included; name the group of people who may use sdrest",
            settings.auth,
        )
    if settings.auth == "none":
        return services  # no tokens at all: skip loading the JWT machinery (start-up time)
    from flask_jwt_extended import JWTManager

    app.config.update(
        JWT_SECRET_KEY=jwt_secret(settings, services.store),
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],  # a token signed any other way (or "none") is refused
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.access_token_seconds),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=settings.refresh_token_days),
        JWT_COOKIE_SECURE=settings.secure_cookies,
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_ACCESS_COOKIE_PATH="/",
        JWT_REFRESH_COOKIE_PATH="/api/v1/auth/",
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt = JWTManager(app)

    @jwt.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return token_revoked(services, payload)

    return services


def client_ip() -> str:
    """The caller's address; X-Forwarded-For only counts when it comes from a trusted proxy."""
    remote = request.remote_addr or ""
    proxies = auth_services().trusted_proxies
    if not proxies or not _in(remote, proxies):
        return remote
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    for address in reversed(forwarded):  # the nearest hop that is not one of our proxies
        if not _in(address, proxies):
            return address
    return remote


def image_token(job_id: str) -> str | None:
    """The token that opens a job's images without credentials (--public-images): an HMAC of
    the job id under the token signing secret, so it needs no storage and cannot be derived
    from the id. None with --auth none (there everything is open anyway)."""
    secret = current_app.config.get("JWT_SECRET_KEY")
    if not secret:
        return None
    return hmac.new(secret.encode("utf-8"), f"image:{job_id}".encode(), hashlib.sha256).hexdigest()[:32]


def image_token_ok(job_id: str, token: str | None) -> bool:
    expected = image_token(job_id)
    return expected is not None and token is not None and hmac.compare_digest(expected, token)


def current_principal() -> Principal | None:
    return g.get("principal")


def owner_for_new_jobs() -> str | None:
    principal = current_principal()
    return principal.name if principal is not None else None


def can_see(owner: str | None) -> bool:
    """Whether the caller may see something owned by ``owner`` (users: only their own)."""
    principal = current_principal()
    return principal is None or principal.sees_everything or owner == principal.name


def visible_owners() -> set[str | None] | None:
    """Owner filter for listings and event streams (None: everything)."""
    principal = current_principal()
    if principal is None or principal.sees_everything:
        return None
    return {principal.name, None} if principal.method != "none" else None


# --- the request hook ---


def _authorize() -> None:
    settings: Settings = auth_services().settings
    endpoint = request.endpoint
    if endpoint is None:  # 404/405: let Flask answer
        return
    rule_options = getattr(request.url_rule, "provide_automatic_options", False)  # werkzeug sets it on Flask rules
    if request.method == "OPTIONS" and rule_options:
        return  # a CORS preflight: never has credentials, runs no view (Flask answers it; sdrest/cors.py)
    auth_services().origins.check(request)  # DNS rebinding and cross-site requests (auth/origin.py)
    rule = RULES.get(endpoint)
    if rule is None:
        log.error("no access rule for endpoint %s: refusing", endpoint)
        raise NotPermitted("forbidden", "this endpoint has no access rule")
    if settings.auth == "none":
        g.principal = Principal(None, "admin", "none")
        return
    if endpoint == "jobs.job_image" and settings.public_images:
        rule = PUBLIC
    principal = _authenticate(settings, refresh=endpoint == "auth.refresh")
    if principal is None:
        if rule == PUBLIC:
            return
        if settings.auth == "optional":
            principal = Principal(GUEST_NAME, "guest", "guest")  # every anonymous visitor: one identity
        else:
            raise NotAuthenticated("unauthorized", "authentication required", headers={"WWW-Authenticate": "Bearer"})
    g.principal = principal
    if rule == PUBLIC:
        return
    required = "guest" if endpoint in GUEST_GENERATION and settings.guest_can_generate else rule
    if not principal.at_least(required):
        raise NotPermitted("forbidden", f"this needs the {required} role")


def _authenticate(settings: Settings, refresh: bool) -> Principal | None:
    """Credentials of the request (API key, bearer token or cookie), or None if it has none."""
    from flask_jwt_extended import get_jwt, verify_jwt_in_request
    from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException, NoAuthorizationError
    from jwt.exceptions import ExpiredSignatureError, PyJWTError

    key = request.headers.get("X-API-Key")
    header = request.headers.get("Authorization", "")
    if not key and header.lower().startswith("bearer ") and header[7:].strip().startswith(API_KEY_PREFIX):
        key = header[7:].strip()
    if key:
        return _api_key_principal(key)
    if header[:6].lower() == "basic " and request.blueprint == "a1111":  # A1111 clients' --api-auth
        from sdrest.auth.basic import BasicCredentialCache, basic_principal

        cache = current_app.extensions.setdefault("sdrest.basic", BasicCredentialCache())
        return basic_principal(header[6:].strip(), auth_services(), settings.auth, client_ip(), cache)
    if settings.auth == "api-key":
        if header:
            _reject("api-key", None, "not an API key")
        return None
    if (
        not header
        and not request.cookies.get("access_token_cookie")
        and not (refresh and request.cookies.get("refresh_token_cookie"))
    ):
        return None
    try:
        verify_jwt_in_request(refresh=refresh)
    except NoAuthorizationError:
        return None
    except CSRFError:
        raise NotAuthenticated("csrf_failed", "missing or wrong CSRF token (X-CSRF-TOKEN header)") from None
    except ExpiredSignatureError:
        _reject("token", None, "expired token")
    except (JWTExtendedException, PyJWTError) as exc:
        _reject("token", None, _token_problem(exc))
    claims = get_jwt()
    method = claims.get("method", "jwt")
    # A token vouches for a login by the method that issued it: after a restart with another
    # --auth (jwt users -> unix accounts), a still-valid token of the old method names an account
    # of another kind that may be someone else.
    if method != login_method(settings.auth):
        _reject("token", None, f"token issued under --auth {method}, not --auth {settings.auth}")
    return Principal(claims["sub"], claims.get("role", "user"), method)


def _api_key_principal(key: str) -> Principal:
    services = auth_services()
    found = services.store.check_key(key)
    if found is None:
        _reject("api-key", None, "invalid, expired or revoked API key")
    assert found is not None
    return Principal(found.owner or f"key:{found.name}", found.role, "api-key")


def _reject(method: str, username: str | None, reason: str) -> None:
    services = auth_services()
    ip = client_ip()
    # A client replaying a bad token in a loop must not grow the audit log without bound.
    if services.audit_limit.allow(ip):
        log_attempt(services.store, method=method, username=username, client_ip=ip, outcome="failure", reason=reason)
    raise NotAuthenticated("unauthorized", reason, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _token_problem(exc: Exception) -> str:
    name = type(exc).__name__
    if "Revoked" in name:
        return "revoked token"
    if "Algorithm" in str(exc) or "algorithm" in str(exc):
        return "token signed with a refused algorithm"
    return "invalid token"


def _networks(raw: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if not raw:
        return []
    return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]


def _in(address: str, networks: list[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
