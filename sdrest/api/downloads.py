"""Model downloads: queue one (a source or a recipe), list them, follow one, cancel one.

Admins only (sdrest/auth/rules.py). A download is durable in the job store and run by the
server's download lane (:mod:`sdrest.worker.downloads`), never by the generation worker; its
events (``download.*``) reach the same streams as jobs (``/api/v1/events``).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from sdrest.api.errors import ApiError, invalid
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.downloads import DownloadList, DownloadListQuery, DownloadRequest, DownloadView
from sdrest.api.schemas.parsing import parse, parse_query, read_body
from sdrest.api.views import API
from sdrest.auth.web import owner_for_new_jobs
from sdrest.jobs.downloads import Download
from sdrest.models.hub import SourceError, parse_source
from sdrest.models.recipes import load_recipes
from sdrest.services import Services, services

bp = Blueprint("downloads", __name__, url_prefix=API)


@bp.post("/models/downloads")
@api_doc(
    request=DownloadRequest,
    errors=(400, 404, 409, 413, 415, 422, 503),
    responses={202: Content(schema=DownloadView, description="queued (or joined: the running download of that file)")},
)
def create_download() -> Any:
    """Download a model file (Hugging Face, Civitai or a URL) or a recipe's files into the models folder."""
    svc = services()
    data, from_form = read_body(request)
    body = parse(DownloadRequest, data, from_form=from_form)
    hosts = _hosts(svc, body.hosts)
    stored, join_key = _what(body)
    download, _created = svc.store.create_download(stored, join_key=join_key, hosts=hosts, owner=owner_for_new_jobs())
    if svc.downloads is not None:
        svc.downloads.wake()
    response = jsonify(download.to_dict())
    response.status_code = 202
    response.headers["Location"] = f"{API}/models/downloads/{download.id}"
    return response


@bp.get("/models/downloads")
@api_doc(query=DownloadListQuery, responses={200: DownloadList}, errors=(400,))
def list_downloads() -> Any:
    """Downloads, newest first."""
    svc = services()
    query = parse_query(DownloadListQuery, request.args)
    page, total = svc.store.list_downloads(limit=query.limit, offset=query.offset)
    return jsonify(
        {"downloads": [item.to_dict() for item in page], "total": total, "limit": query.limit, "offset": query.offset}
    )


@bp.get("/models/downloads/<download_id>")
@api_doc(responses={200: DownloadView}, errors=(404,))
def get_download(download_id: str) -> Any:
    """One download: status, bytes done and total, speed, its files, each host's progress."""
    return jsonify(_download_or_404(services(), download_id).to_dict())


@bp.delete("/models/downloads/<download_id>")
@api_doc(responses={200: DownloadView}, errors=(404,))
def cancel_download(download_id: str) -> Any:
    """Cancel a download that has not finished and remove its partial files (a finished one is left as it is)."""
    svc = services()
    before = svc.store.cancel_download(download_id)
    if before is None:
        raise _not_found(download_id)
    if svc.downloads is not None and not before.status.finished:
        svc.downloads.cancelled(before)
    return jsonify(_download_or_404(svc, download_id).to_dict())


def _what(body: DownloadRequest) -> tuple[dict[str, Any], str]:
    """What the store keeps of the request, and the key that joins a second request for the same."""
    if body.source is not None and body.recipe is not None:
        raise invalid("recipe", "give source or recipe, not both")
    if body.recipe is not None:
        for name in ("type", "sha256", "name"):
            if getattr(body, name) is not None:
                raise invalid(name, "only with source (a recipe names its own files)")
        if body.recipe not in load_recipes(services().settings.recipes):
            raise ApiError(
                404, "unknown_recipe", f"recipe: no recipe {body.recipe!r} (see GET {API}/models/recipes)", "recipe"
            )
        return {"recipe": body.recipe}, f"recipe:{body.recipe}"
    if body.source is None:
        raise ApiError(422, "missing_field", "source: required (or recipe)", "source")
    try:
        source = parse_source(body.source)
    except SourceError as exc:
        raise invalid("source", str(exc)) from None
    stored = {"source": source.text, "type": body.type, "sha256": body.sha256, "name": body.name}
    return stored, f"source:{source.text}|{body.type or ''}|{body.name or ''}"


def _hosts(svc: Services, asked: list[str] | None) -> list[str]:
    """The hosts a download runs on: this server (its own models folder), or on an API node
    without workers, the worker hosts that are live (all, or those asked for)."""
    if svc.settings.worker:
        known = [svc.settings.worker_name]
    else:
        now = time.time()
        live = [w for w in svc.store.workers() if now - w.heartbeat_at < svc.settings.lease_seconds]
        known = sorted({str(w.info["download_host"]) for w in live if w.info.get("download_host")})
        if not known:
            raise ApiError(409, "no_download_hosts", "no worker host is live to download on: start sdrest worker")
    if not asked:
        return known
    for index, host in enumerate(asked):
        if host not in known:
            raise invalid(f"hosts[{index}]", f"unknown host {host!r}; the hosts: {', '.join(known)}")
    if len(set(asked)) != len(asked):
        raise invalid("hosts", "names a host twice")
    return list(asked)


def _download_or_404(svc: Services, download_id: str) -> Download:
    download = svc.store.get_download(download_id)
    if download is None:
        raise _not_found(download_id)
    return download


def _not_found(download_id: str) -> ApiError:
    return ApiError(404, "download_not_found", f"no download {download_id}", "download_id")
