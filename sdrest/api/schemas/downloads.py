"""Requests and answers of the model download routes (``/api/v1/models/downloads``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sdrest.api.schemas.base import QueryModel, RequestModel, ResponseModel
from sdrest.models.types import ModelType

DownloadStatusName = Literal["queued", "downloading", "verifying", "completed", "failed", "cancelled"]


class DownloadRequest(RequestModel):
    """A file (``source``, with ``type``, ``sha256`` and ``name`` when wanted) or a recipe's files
    (``recipe``): one of the two (the route checks, naming the field)."""

    source: str | None = Field(
        None,
        description=(
            "hf:OWNER/REPO/PATH[@REV], a huggingface.co file URL, civitai:VERSION_ID, a civitai.com model or"
            " download URL, or any other https:// URL."
        ),
        max_length=2048,
    )
    recipe: str | None = Field(
        None, description="A recipe of GET /api/v1/models/recipes: all its files.", max_length=200
    )
    type: str | None = Field(
        None, description="The model type (folder) the file goes to; default: the hub's type, else its header."
    )
    sha256: str | None = Field(
        None, description="The file's SHA-256 (64 hex digits); a file that differs is removed and the download fails."
    )
    name: str | None = Field(None, description="The file name in its folder (default: the source's).", max_length=255)
    hosts: list[str] | None = Field(
        None, description="The worker hosts to download on (a cluster; default: every host).", max_length=64
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        model_type = ModelType.from_name(value)  # ValueError names the valid types
        if not model_type.is_weights:
            raise ValueError(f"{model_type.api_name} files are not downloaded; choose a type of model weights")
        return model_type.api_name

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise ValueError("must be 64 hexadecimal digits (a SHA-256)")
        return value.lower()


class DownloadListQuery(QueryModel):
    limit: int = Field(50, ge=1, le=500, description="Page size.")
    # Bounded like the job listing's: a database integer, not any number (an offset of 6.4e31
    # overflowed SQLite's and answered 500).
    offset: int = Field(0, ge=0, le=10**9, description="Downloads to skip.")


class DownloadErrorView(ResponseModel):
    code: str = Field(description="Stable snake_case: not_found, gated, unauthorized, hash_mismatch, ...")
    message: str = Field(description="What went wrong and what to do about it.")


class DownloadFileView(ResponseModel):
    source: str = Field(description="The file's own source (canonical form).")
    name: str
    type: str | None = Field(description="The model type (folder) it goes to, once known.")
    size: int | None = Field(description="Bytes, when the hub says.")
    sha256: str | None = Field(description="The hash it is checked against (the hub's or the request's).")
    bytes_done: int
    path: str | None = Field(description="Where it landed (once completed).")
    skipped_existing: bool = Field(description="An identical file was there already: nothing was downloaded.")


class DownloadHostView(ResponseModel):
    host: str = Field(description="The host whose models folder it writes to (one entry on a single server).")
    status: DownloadStatusName
    bytes_done: int
    bytes_total: int | None
    error: DownloadErrorView | None


class DownloadView(ResponseModel):
    """A download: durable like a job, run by the server's download lane."""

    id: str
    status: DownloadStatusName
    source: str | None = Field(description="The source asked for (null for a recipe).")
    recipe: str | None = Field(description="The recipe asked for (null for a source).")
    files: list[DownloadFileView] = Field(description="The files it writes (known once the source is resolved).")
    bytes_done: int
    bytes_total: int | None = Field(description="Null until every file's size is known.")
    bytes_per_second: float
    error: DownloadErrorView | None
    hosts: list[DownloadHostView]
    created_at: float
    started_at: float | None
    finished_at: float | None


class DownloadList(ResponseModel):
    downloads: list[DownloadView] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int
