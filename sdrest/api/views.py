"""How jobs look in API answers."""

from __future__ import annotations

from typing import Any

from sdrest.images import ImageStore
from sdrest.images.store import encode_file
from sdrest.jobs import Job, JobStatus, JobStore
from sdrest.jobs.params import public_params
from sdrest.settings import Settings

API = "/api/v1"


def job_or_404(store: JobStore, job_id: str) -> Job:
    """The job, or the API's 404 naming ``job_id``."""
    from sdrest.api.errors import not_found
    from sdrest.auth.web import can_see

    job = store.get(job_id)
    # Another user's job is "not found", never "forbidden": ids must not be probeable.
    if job is None or not can_see(job.owner):
        raise not_found("job", "job_id")
    return job


def running_view(job_id: str | None, owner: str | None) -> dict[str, Any]:
    """The running job as the caller may see it: its id, or (another user's job) only that the
    worker is busy: ``{"running": None, "running_hidden": True}``."""
    from sdrest.auth.web import can_see

    if job_id is not None and not can_see(owner):
        return {"running": None, "running_hidden": True}
    return {"running": job_id, "running_hidden": False}


def image_url(job_id: str, index: int, *, public: bool = False, kind: str = "images") -> str:
    """An image's URL; with --public-images it carries the job's image token, which alone
    opens it without credentials (the job id does not: ids show up in listings and events)."""
    url = f"{API}/jobs/{job_id}/{kind}/{index}"  # kind: "images", or a video job's "videos"
    if public:
        from sdrest.auth.web import image_token

        token = image_token(job_id)
        if token is not None:
            url += f"?token={token}"
    return url


def job_view(job: Job, store: JobStore, settings: Settings, *, base64_from: ImageStore | None = None) -> dict[str, Any]:
    """A job as clients see it (the spec's response shape plus status details); with
    ``base64_from``, each image's bytes too (``data``), read from that image store."""
    params = public_params(job.params)
    progress = dict(job.progress)
    steps = progress.get("steps") or 0
    progress["percent"] = (
        100.0
        if job.status is JobStatus.COMPLETED
        else round(100.0 * (progress.get("step") or 0) / steps, 1)
        if steps
        else 0.0
    )
    result = job.result or {}
    resolved = result.get("resolved") or {}
    images = []
    for image in result.get("images", []):
        entry = {key: image[key] for key in ("index", "seed", "width", "height", "format")}
        entry["url"] = image_url(job.id, image["index"], public=settings.public_images)
        entry["parameters"] = {**params, **resolved, "seed": image["seed"]} if job.kind != "upscale" else params
        if base64_from is not None:
            entry["data"] = encode_file(base64_from, job.id, image["file"])
        images.append(entry)
    view: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status.value,
        "mode": job.kind,
        "priority": job.priority,
        "queue_position": store.queue_position(job.id) if job.status is JobStatus.QUEUED else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "worker": job.worker,
        "progress": progress,
        "timings": job.timings,
        "parameters": params,
        "images": images,
        "videos": [
            {
                **{key: video[key] for key in ("index", "format", "frames", "fps", "width", "height")},
                "url": image_url(job.id, video["index"], public=settings.public_images, kind="videos"),
            }
            for video in result.get("videos", [])
        ],
        "seeds": result.get("seeds", []),
        "model": result.get("model") or params.get("model"),
        "resolved": result.get("resolved"),
        "warnings": result.get("warnings", []),
        "error": _public_error(job.error),
        "generation_time": (round(job.finished_at - job.started_at, 3) if job.finished_at and job.started_at else None),
        "links": {"self": f"{API}/generate/{job.id}", "events": f"{API}/generate/{job.id}/events"},
    }
    return view


def _public_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {k: v for k, v in error.items() if k in ("code", "message", "field", "signal", "exit_code", "log")}
