"""Compatibility APIs: AUTOMATIC1111 (``/sdapi/v1``) and OpenAI images (``/v1``).

Both translate their requests into sdrest's own generation fields and submit ordinary jobs
(queued, visible in events and the UI, owned by the caller, cancellable); see docs/compat.md.
:func:`init_app` registers the blueprints and the small state they share.
"""

from __future__ import annotations

from flask import Flask

from sdrest.api.compat import a1111, a1111_tools, openai
from sdrest.api.compat.state import CompatState


def init_app(app: Flask) -> None:
    """Register both blueprints; call after ``app.extensions["sdrest"]`` exists."""
    assert a1111_tools.bp is a1111.bp  # its routes are registered on the A1111 blueprint
    app.register_blueprint(a1111.bp)
    app.register_blueprint(openai.bp)
    app.extensions["sdrest.compat"] = CompatState(app.extensions["sdrest"])
