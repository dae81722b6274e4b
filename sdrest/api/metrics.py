"""``GET /metrics``: the server's figures for Prometheus (see :mod:`sdrest.metrics`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from sdrest.api.schemas import Content, api_doc
from sdrest.metrics import CONTENT_TYPE
from sdrest.services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@api_doc(
    responses={200: Content((CONTENT_TYPE.split(";")[0],), {"type": "string"}, "the Prometheus text exposition format")}
)
def metrics() -> Any:
    """Queue depth by priority, jobs by status, job, stage and model-load durations as histograms,
    the worker's health and GPU memory where known. No job ids, owners or prompts: like /status,
    any credentials (a guest API key for the scraper) may read it."""
    figures = services().metrics
    if figures is None:
        raise RuntimeError("the app was built without its metrics")
    return Response(figures.render(), content_type=CONTENT_TYPE)
