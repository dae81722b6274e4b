"""Errors in the shapes the compatibility clients parse, and request bodies read for them.

* A1111 (its API middleware): ``{"error": "<code>", "detail": "...", "body": "", "errors": "..."}``,
  plus ``field`` naming the request field at fault.
* OpenAI: ``{"error": {"message", "type", "param", "code"}}``; validation problems are 400, as
  OpenAI answers them, so its SDK raises ``BadRequestError``.

The handlers are registered on each compatibility blueprint, so they also shape the errors of
the authentication hook for those routes (401/403), and the app's own format stays elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Blueprint, Request, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from sdrest.api.compat.jobs import ClientGone
from sdrest.api.errors import ApiError, from_auth, from_http, unavailable
from sdrest.api.schemas.parsing import api_error, read_body
from sdrest.auth.errors import AuthError
from sdrest.errors import StoreUnavailable

log = logging.getLogger("sdrest.compat")
M = TypeVar("M", bound=BaseModel)

#: The status of a call whose client has gone (nginx's "client closed request"; never read).
CLIENT_GONE = 499


def body_of(request: Request) -> dict[str, Any]:
    """The request's fields: a JSON object as A1111 and OpenAI take, or a form (multipart, url-encoded)."""
    return read_body(request)[0]


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """``data`` as ``model`` (lax, as A1111's and OpenAI's servers are), or an ApiError naming the field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise api_error(exc.errors(include_url=False)) from None


def rename_field(exc: ApiError, names: Mapping[str, str]) -> ApiError:
    """``exc`` about an sdrest field, renamed to the field the client sent (``names``: sdrest name
    -> client name; ``loras[0].name`` is looked up as itself, then as ``loras``)."""
    if exc.field is None:
        return exc
    renamed = names.get(exc.field) or names.get(exc.field.split("[")[0])
    if renamed is None:
        return exc
    message = exc.message[len(exc.field) :] if exc.message.startswith(exc.field) else f": {exc.message}"
    return ApiError(exc.status, exc.code, renamed + message, renamed, headers=exc.headers, **exc.extra)


def _as_api_error(error: Exception) -> ApiError:
    if isinstance(error, ApiError):
        return error
    if isinstance(error, AuthError):
        return from_auth(error)
    if isinstance(error, StoreUnavailable):
        return unavailable(error)
    if isinstance(error, HTTPException):
        return from_http(error)
    log.exception("unhandled error in a compatibility route", exc_info=error)
    return ApiError(500, "internal_error", "internal server error")


def a1111_body(error: ApiError) -> dict[str, Any]:
    return {"error": error.code, "detail": error.message, "body": "", "errors": error.message, "field": error.field}


#: sdrest statuses -> OpenAI's error type names.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def openai_status(status: int) -> int:
    return 400 if status == 422 else status


def openai_body(error: ApiError) -> dict[str, Any]:
    status = openai_status(error.status)
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": error.message, "type": kind, "param": error.field, "code": error.code}}


def install(
    bp: Blueprint, body: Callable[[ApiError], dict[str, Any]], status: Callable[[int], int] = lambda s: s
) -> None:
    """Answer every error of ``bp``'s routes with ``body``."""

    def handle(error: Exception) -> Any:
        if isinstance(error, ClientGone):
            return "", CLIENT_GONE
        api = _as_api_error(error)
        response = jsonify(body(api))
        response.status_code = status(api.status)
        for name, value in api.headers.items():
            response.headers[name] = value
        return response

    bp.register_error_handler(Exception, handle)

    # A URL under the blueprint's prefix that no route matches (an unknown path, a model id
    # with a newline, a wrong method) reaches no blueprint's error handler: Flask only knows
    # the blueprint once a route matched. Answer those in the family's shape too, from a hook
    # that runs before dispatch raises the routing error.
    prefix = bp.url_prefix or ""

    def unrouted() -> Any:
        error = request.routing_exception
        under = request.path == prefix or request.path.startswith(prefix + "/")
        if isinstance(error, HTTPException) and (error.code or 0) >= 400 and under:
            return handle(error)
        return None

    bp.before_app_request(unrouted)
