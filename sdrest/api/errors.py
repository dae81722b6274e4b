"""One error format for the whole API: ``{"error": {"code", "message", "field"}}``.

Handlers registered by :func:`register_error_handlers` turn :class:`ApiError`, Werkzeug's
HTTP errors and anything unexpected into that shape. Unexpected exceptions are logged with
their traceback and answered with a generic 500: never a stack trace to the client. A database
that cannot be used for now (:class:`~sdrest.errors.StoreUnavailable`: PostgreSQL down, SQLite
locked) is a 503 with ``Retry-After``, logged once per outage by the store, not per request.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sdrest.auth.errors import AuthError, NotAuthenticated, NotPermitted, TooManyAttempts
from sdrest.errors import SdrestError, StoreUnavailable

log = logging.getLogger("sdrest.api")


class ApiError(SdrestError):
    """An error answered as JSON with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        error.update(self.extra)
        return {"error": error}


def invalid(field: str, message: str, code: str = "invalid_field", status: int = 422) -> ApiError:
    """A request field with a bad value (the message starts with the field's name)."""
    return ApiError(status, code, f"{field}: {message}", field)


#: The HTTP status of each refusal of the auth layer (which knows nothing of HTTP).
AUTH_STATUS: dict[type[AuthError], int] = {NotAuthenticated: 401, NotPermitted: 403, TooManyAttempts: 429}


def from_auth(error: AuthError) -> ApiError:
    """The API's answer to a refusal of the auth layer."""
    status = next(code for kind, code in AUTH_STATUS.items() if isinstance(error, kind))
    return ApiError(status, error.code, error.message, error.field, headers=dict(error.headers))


def from_http(error: HTTPException) -> ApiError:
    """The API's answer to werkzeug's own errors (404, 405, 413, ...). A 405 says which methods
    the URL has (RFC 9110 requires ``Allow``; werkzeug knows them)."""
    code = (error.name or "error").lower().replace(" ", "_")
    allowed = getattr(error, "valid_methods", None)
    headers = {"Allow": ", ".join(sorted(allowed))} if error.code == 405 and allowed else None
    return ApiError(error.code or 500, code, error.description or error.name or code, headers=headers)


#: Seconds a client is asked to wait (``Retry-After``) while a database is unavailable.
STORE_RETRY_AFTER = 5


def unavailable(error: StoreUnavailable) -> ApiError:
    """The API's answer while a store's database cannot be used: 503, naming the store and the
    cause in words a client may see (no host or URL: those are in the server's log)."""
    return ApiError(503, "store_unavailable", error.public, headers={"Retry-After": str(STORE_RETRY_AFTER)})


def not_found(what: str, field: str | None = None) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found", field)


def _respond(error: ApiError) -> Any:
    response = jsonify(error.body())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Any:
        return _respond(error)

    @app.errorhandler(AuthError)
    def _auth_error(error: AuthError) -> Any:
        return _respond(from_auth(error))

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(error: StoreUnavailable) -> Any:
        return _respond(unavailable(error))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge) -> Any:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return _respond(ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes"))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        return _respond(from_http(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        log.exception("unhandled error")
        return _respond(ApiError(500, "internal_error", "internal server error"))
