"""How jobs look in answers: a job (``GET /generate/{job_id}``, submissions) and the queue."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sdrest.api.schemas.base import QueryModel, ResponseModel

JobStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]


class JobProgress(ResponseModel):
    step: int = Field(description="Steps done in the current stage.")
    steps: int = Field(description="Steps of the current stage (0 before it is known).")
    stage: str | None = Field(
        description="loading, encoding, sampling, decoding, upscaling (upscale_model) "
        "or writing; null when not started."
    )
    percent: float = Field(ge=0, le=100, description="step/steps as a percentage (100 when completed).")


class JobError(ResponseModel):
    code: str = Field(description="worker_crashed, interrupted, model_load_failed, generation_failed, not_found, ...")
    message: str
    field: str | None = None
    signal: int | str | None = Field(None, description="The signal that killed the worker (worker_crashed).")
    exit_code: int | None = None
    log: list[str] | str | None = Field(None, description="The library's last log lines (worker_crashed).")


class JobImage(ResponseModel):
    index: int
    seed: int | None = Field(description="The seed of this image (null for upscales).")
    width: int
    height: int
    format: str = Field(description="png, jpeg or webp.")
    url: str = Field(description="GET this for the file (?size=N for a thumbnail).")
    parameters: dict[str, Any] = Field(
        description="The job's parameters with this image's seed and, once "
        "finished, the resolved values (model, sampler, ...)."
    )
    data: str | None = Field(None, description="The image as base64 (only with base64=true).")


class JobVideo(ResponseModel):
    """One clip of a finished video job (POST /generate/video)."""

    index: int
    format: str = Field(description="webp (animated, always) or mp4 (where PyAV is installed).")
    frames: int
    fps: int
    width: int
    height: int
    url: str = Field(description="GET this for the file.")


class JobLinks(ResponseModel):
    self: str
    events: str


class Resolved(ResponseModel):
    """What a finished generation really ran with (the library's defaults filled in)."""

    model: str | None = Field(description="The checkpoint (or diffusion model) used, also when the default ran.")
    model_hash: str | None = Field(description="Its A1111 short hash (the first 10 hex digits of its sha256).")
    sampler: str
    scheduler: str
    cfg_scale: float
    clip_skip: int | None = Field(description="CLIP layers skipped (null for models without a CLIP skip).")


class JobView(ResponseModel):
    """A job: its state, progress, parameters and images."""

    job_id: str
    status: JobStatusName
    mode: str = Field(description="txt2img, img2img, inpaint, video, upscale, load_model or unload_model.")
    priority: int
    queue_position: int | None = Field(
        description="How many queued jobs run before this one (0: it runs next); null unless queued."
    )
    created_at: float = Field(description="POSIX seconds.")
    started_at: float | None
    finished_at: float | None
    attempts: int = Field(description="How often a worker started it (a job put back into the queue runs again).")
    worker: str | None = Field(description="The id of the worker that runs it or ran it last (null: none yet).")
    progress: JobProgress
    timings: dict[str, float] = Field(description="Seconds per stage.")
    parameters: dict[str, Any] = Field(description='The parameters as requested (images as "given").')
    images: list[JobImage]
    videos: list[JobVideo] = Field(
        description="The clips of a video job (its frames are the images); empty for other jobs."
    )
    seeds: list[int]
    model: str | None
    resolved: Resolved | None = Field(
        description="What a finished generation ran with (null until then, and for other jobs)."
    )
    warnings: list[str]
    error: JobError | None
    generation_time: float | None = Field(description="Seconds from start to finish.")
    links: JobLinks


class QueueView(ResponseModel):
    """A page of jobs."""

    jobs: list[JobView]
    total: int = Field(description="Jobs matching the filter, all pages.")
    limit: int
    offset: int
    queued: int = Field(description="Jobs waiting in the whole queue.")
    running: str | None = Field(description="The id of the running job (null when idle or hidden).")
    running_hidden: bool | None = Field(None, description="True when another user's job runs.")


class SubmitQuery(QueryModel):
    wait: bool | None = Field(None, description="Answer with the finished job (the body's `wait` wins).")
    base64: bool | None = Field(None, description="Include the images as base64 (default: when waiting).")


class JobQuery(QueryModel):
    base64: bool = Field(False, description="Include the images as base64.")


class QueueQuery(QueryModel):
    status: str | None = Field(
        None, description="Comma-separated statuses, e.g. `queued,running`.", examples=["queued,running"]
    )
    mode: str | None = Field(None, description="Only jobs of this mode (txt2img, img2img, inpaint, upscale, ...).")
    limit: int = Field(50, ge=1, le=200, description="Page size.")
    offset: int = Field(0, ge=0, le=10**9, description="Jobs to skip.")
    order: Literal["newest", "oldest", "run"] = Field(
        "newest", description="newest, oldest, or run: the queue in running order."
    )


class ImageQuery(QueryModel):
    size: int | None = Field(None, ge=16, le=1024, description="A thumbnail whose longest side is this many pixels.")
    download: bool = Field(False, description="Served as an attachment.")
    token: str | None = Field(None, description="The image token of a --public-images URL.")


class EventsQuery(QueryModel):
    last_event_id: int | None = Field(
        None, ge=0, description="Replay persisted events after this id (or the Last-Event-ID header)."
    )
