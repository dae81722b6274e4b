"""The browser UI: static files from ``--ui-dir`` (or the bundled ``webui/``) at ``/ui/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, redirect, send_from_directory

from sdrest.api.errors import not_found
from sdrest.services import services

bp = Blueprint("ui", __name__)

#: The UI's own files, its API and data:/blob: images are all it loads; no page may frame it
#: (clickjacking, which with --auth none would click as admin) and nothing is sniffed as another
#: type. Inline styles: Preact sets style attributes; scripts stay 'self' only.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.after_request
def _ui_headers(response: Response) -> Response:
    response.headers.update(UI_HEADERS)
    return response


#: The UI that CMake installs into the package (``webui/`` of the source, as ``sdrest/webui``).
BUNDLED = Path(__file__).resolve().parents[1] / "webui"
#: Running from a source checkout (``PYTHONPATH=.``), the checkout's own ``webui/``.
CHECKOUT = Path(__file__).resolve().parents[2] / "webui"


def ui_root() -> Path | None:
    configured = services().settings.ui_dir
    candidates = [configured] if configured is not None else [BUNDLED, CHECKOUT]
    return next((root for root in candidates if (root / "index.html").is_file()), None)


@bp.get("/")
def home() -> Any:
    return redirect("/ui/", code=302)


@bp.get("/ui/")
@bp.get("/ui/<path:path>")
def ui(path: str = "index.html") -> Any:
    root = ui_root()
    if root is None:
        raise not_found("web UI (no index.html in --ui-dir)")
    # send_from_directory refuses paths that leave the folder (.., absolute, symlinks out).
    response = send_from_directory(root, path)
    # Revalidate every time (a cheap 304): after an upgrade no stale module mixes with new ones.
    response.headers["Cache-Control"] = "no-cache"
    return response
