"""The queue, stored jobs and their images."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from sdrest.api.errors import ApiError, not_found
from sdrest.api.schemas import Content, api_doc
from sdrest.api.schemas.jobs import ImageQuery, QueueQuery, QueueView
from sdrest.api.schemas.parsing import parse_query
from sdrest.api.views import API, job_or_404, job_view, running_view
from sdrest.auth.web import current_principal, image_token_ok, visible_owners
from sdrest.images import StoredFile
from sdrest.images.store import split_file
from sdrest.jobfiles import remove_job_files
from sdrest.jobs import Job, JobStatus
from sdrest.services import Services, services

bp = Blueprint("jobs", __name__, url_prefix=API)


@bp.get("/queue")
@api_doc(query=QueueQuery, responses={200: QueueView}, errors=(400,))
def queue() -> Any:
    """Jobs, newest first, filtered by ?status=queued,running&mode=...; paginated."""
    svc = services()
    query = parse_query(QueueQuery, request.args)
    statuses = None
    if query.status:
        try:
            statuses = [JobStatus(s.strip()) for s in query.status.split(",") if s.strip()]
        except ValueError:
            valid = ", ".join(s.value for s in JobStatus)
            raise ApiError(400, "invalid_query", f"status: must be among {valid}", "status") from None
    limit, offset, order = query.limit, query.offset, query.order
    owners = visible_owners()
    owner = None if owners is None else current_principal().name  # type: ignore[union-attr]
    if order == "run":  # the queue in the order it will run
        queued = [
            j
            for j in (svc.store.get(i) for i in svc.store.queued_ids())
            if j is not None and (owner is None or j.owner == owner)
        ]
        jobs, total = queued[offset : offset + limit], len(queued)
    else:
        jobs, total = svc.store.list(
            statuses=statuses,
            owner=owner,
            kind=query.mode or None,
            limit=limit,
            offset=offset,
            newest_first=order == "newest",
        )
    counts = svc.store.counts()
    worker = svc.supervisor.state()
    return jsonify(
        {
            "jobs": [job_view(job, svc.store, svc.settings) for job in jobs],
            "total": total,
            "limit": limit,
            "offset": offset,
            "queued": counts.get("queued", 0),
            **running_view(worker.running_job, worker.running_owner),
        }
    )


@bp.delete("/jobs/<job_id>")
@api_doc(responses={204: None}, errors=(404, 409))
def delete_job(job_id: str) -> Any:
    """Delete a finished job with its images and inputs (cancel a live one first)."""
    svc = services()
    job = job_or_404(svc.store, job_id)
    if not job.status.finished:
        raise ApiError(409, "job_active", f"job {job_id} is {job.status.value}: cancel it first", "job_id")
    deleted = svc.store.delete(job_id)
    if deleted is not None:
        remove_job_files(svc.settings, svc.images, deleted.id, deleted.params)
    return "", 204


@bp.get("/jobs/<job_id>/images/<int:index>")
@api_doc(
    query=ImageQuery,
    errors=(400, 404),
    responses={
        200: Content(
            ("image/png", "image/jpeg", "image/webp"),
            {"type": "string", "format": "binary"},
            "the image file (a PNG thumbnail with ?size=)",
        ),
        304: None,
    },
)
def job_image(job_id: str, index: int) -> Any:
    """The image file; ?size=N gives a thumbnail whose longest side is N pixels."""
    svc = services()
    query = parse_query(ImageQuery, request.args)
    # A thumbnail is made from (or cached beside) the image: the image itself is not read here.
    job, _entry, name = job_entry(svc, job_id, "images", index, query.token)
    size = query.size
    file = svc.images.open(job.id, name) if size is None else svc.images.thumbnail(job.id, name, size)
    if file is None:
        raise not_found("image file", "index")
    return send_output(file, f"{job_id}-{index}{file.suffix}", download=query.download)


def job_entry(
    svc: Services, job_id: str, listing: str, index: int, token: str | None
) -> tuple[Job, dict[str, Any], str]:
    """``result[listing][index]`` of a job the caller may see, and its file's name (else 404).

    With --public-images and no credentials, only the image token opens a job's files (never
    the bare job id). The name is checked to be the job's own.
    """
    if svc.settings.public_images and current_principal() is None and not image_token_ok(job_id, token):
        raise not_found("job", "job_id")
    job = job_or_404(svc.store, job_id)
    entries = (job.result or {}).get(listing, [])
    noun = listing.removesuffix("s")
    if index >= len(entries):
        raise not_found(noun, "index")
    try:
        name = split_file(job.id, entries[index]["file"])
    except ValueError:
        raise not_found(f"{noun} file", "index") from None
    return job, entries[index], name


def job_output(
    svc: Services, job_id: str, listing: str, index: int, token: str | None
) -> tuple[Job, dict[str, Any], StoredFile]:
    """:func:`job_entry` and the file itself, read through the image store (else 404)."""
    job, entry, name = job_entry(svc, job_id, listing, index, token)
    file = svc.images.open(job.id, name)
    if file is None:
        raise not_found(f"{listing.removesuffix('s')} file", "index")
    return job, entry, file


def send_output(file: StoredFile, download_name: str, *, download: bool, mimetype: str | None = None) -> Response:
    """A job's file: it never changes, so caches keep it (privately: it is someone's)."""
    if file.path is not None:
        response = send_file(
            file.path,
            mimetype=mimetype,
            conditional=True,
            max_age=31536000,
            download_name=download_name,
            as_attachment=download,
        )
    else:
        response = send_file(
            io.BytesIO(file.read()),
            mimetype=mimetype or file.content_type,
            conditional=True,
            etag=file.etag or False,
            last_modified=file.modified,
            max_age=31536000,
            download_name=download_name,
            as_attachment=download,
        )
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
