"""The browser UI: static files from ``--ui-dir`` (or the bundled ``webui/``) at ``/ui/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, redirect, send_from_directory

from sdrest.api.errors import not_found
from sdrest.services import services

bp = Blueprint("ui", __name__)

#: The UI installed with the package (filled by the web UI issue).
BUNDLED = Path(__file__).resolve().parents[1] / "webui"


def ui_root() -> Path | None:
    configured = services().settings.ui_dir
    root = configured if configured is not None else BUNDLED
    return root if (root / "index.html").is_file() else None


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
    return send_from_directory(root, path, max_age=300)
