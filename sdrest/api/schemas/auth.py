"""Bodies of the authentication routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdrest.api.schemas.base import QueryModel, RequestModel, ResponseModel


class LoginRequest(RequestModel):
    username: str = Field(min_length=1, max_length=64, description="User name.")
    password: str = Field(min_length=1, max_length=1024, description="Password.")
    cookie: bool | None = Field(None, description="Also set HttpOnly session cookies (for browsers).")


class LogoutRequest(RequestModel):
    refresh_token: str | None = Field(None, max_length=8192, description="Revoke this refresh token too.")


class UserView(ResponseModel):
    username: str
    role: str = Field(description="guest, user or admin.")
    method: str = Field(description="jwt, unix or pam.")


_COOKIES = "absent with cookie=true: the tokens are then only in HttpOnly cookies"


class LoginView(ResponseModel):
    access_token: str | None = Field(None, description=f"The bearer token ({_COOKIES}).")
    refresh_token: str | None = Field(None, description=f"Trade it for new tokens at /auth/refresh ({_COOKIES}).")
    token_type: Literal["Bearer", "cookie"]
    expires_in: int = Field(description="Seconds the access token is valid.")
    user: UserView


class RefreshView(ResponseModel):
    access_token: str | None = Field(None, description="A new access token (absent for cookie sessions).")
    refresh_token: str | None = Field(
        None, description="The next refresh token: the one sent is spent (absent for cookie sessions)."
    )
    token_type: Literal["Bearer", "cookie"]
    expires_in: int


class ProfileView(ResponseModel):
    username: str | None
    role: str
    method: str = Field(description="none, jwt, api-key, unix, pam or guest.")
    expires_at: str | None = Field(None, description="When the token expires (ISO 8601; tokens only).")
    can_generate: bool = Field(
        description="Whether these credentials may submit jobs (guests only with "
        "--guest-can-generate): the web UI shows or hides its Generate button."
    )


class LogoutView(ResponseModel):
    logged_out: bool


class AttemptView(ResponseModel):
    id: int
    time: float
    method: str
    username: str | None
    client_ip: str | None
    outcome: str = Field(description="success, failure or throttled.")
    reason: str | None


class AttemptList(ResponseModel):
    attempts: list[AttemptView]


class AttemptsQuery(QueryModel):
    limit: int = Field(100, ge=1, le=1000, description="Page size.")
    offset: int = Field(0, ge=0, le=10**9)
    username: str | None = Field(None, description="Only this user's attempts.")
