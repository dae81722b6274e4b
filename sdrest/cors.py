"""Cross-origin access (``--cors-origins``) through Flask-CORS.

Off by default: a browser page on another origin cannot call the API. ``--cors-origins`` lists
the origins that may (each may send credentials: cookies, Authorization), or ``*`` lets any
origin call it without credentials. Preflight requests are answered by Flask-CORS; the auth hook
lets them through because a preflight never carries credentials and runs nothing.
"""

from __future__ import annotations

from flask import Flask

from sdrest.settings import Settings

#: The URL prefixes a browser client may call: the API and the compatibility APIs.
CORS_RESOURCES = r"^/(api|sdapi|v1)/.*"

#: Request headers a cross-origin page may send (credentials, CSRF and the anti-CSRF marker of
#: sdrest/auth/origin.py, event replay, RFC 7240).
ALLOWED_HEADERS = (
    "Content-Type",
    "Authorization",
    "X-API-Key",
    "X-CSRF-TOKEN",
    "X-Requested-With",
    "Last-Event-ID",
    "Prefer",
)

#: Response headers a cross-origin page may read (the job's URL after a 202, back-off hints).
EXPOSED_HEADERS = ("Location", "Preference-Applied", "Retry-After", "WWW-Authenticate")


def setup_cors(app: Flask, settings: Settings) -> None:
    origins = settings.cors_origin_list
    if not origins:
        return
    from flask_cors import CORS

    any_origin = origins == ["*"]
    CORS(
        app,
        resources={CORS_RESOURCES: {}},
        origins="*" if any_origin else origins,
        supports_credentials=not any_origin,
        allow_headers=list(ALLOWED_HEADERS),
        send_wildcard=any_origin,
        expose_headers=list(EXPOSED_HEADERS),
        max_age=600,
        vary_header=True,
    )
