"""Why the auth layer refuses a request, without knowing HTTP.

The API maps each class to its status in one table (:data:`sdrest.api.errors.AUTH_STATUS`), so
the auth package never imports the API package above it.
"""

from __future__ import annotations

from sdrest.errors import SdrestError


class AuthError(SdrestError):
    """A refused request: ``code`` and ``message`` for the client, ``field`` the header or field
    at fault, ``headers`` to send with the answer (``WWW-Authenticate``, ``Retry-After``)."""

    def __init__(
        self, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


class NotAuthenticated(AuthError):
    """No credentials where some are needed, or credentials that do not hold."""


class NotPermitted(AuthError):
    """Known or not, the client may not do this (role, missing rule, foreign origin or host)."""


class TooManyAttempts(AuthError):
    """Too many failed logins: try again after ``Retry-After`` seconds."""
