"""Answers of the model library routes: models, scans, presets and prompt templates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sdrest.api.schemas.base import QueryModel, ResponseModel


class Detection(ResponseModel):
    architecture: str = Field(description="sd1, sd2, sdxl, sd3, flux, ... or unknown.")
    variant: str | None = Field(description="inpaint, tiny, unet_only, ...")
    details: dict[str, Any]
    error: str | None = Field(description="Why the file could not be read (architecture is then unknown).")


class ModelView(ResponseModel):
    """One file of the library."""

    id: str = Field(description="<type>/<path under its folder>: the id of GET /models/{model_id}.")
    type: str
    name: str = Field(description="The name requests use (relative path without extension).")
    relative_path: str
    category: str | None = Field(description="The sub-folder, if any.")
    size: int
    mtime: float
    extension: str
    architecture: str | None
    variant: str | None
    detection: Detection | None
    sha256: str | None = Field(description="Known once computed (?hashes=true).")
    short_hash: str | None = Field(description="A1111's short hash (AutoV2).")
    loaded: bool = Field(description="The checkpoint the worker has loaded.")
    type_flag: int = Field(description="The type's bit flag.")


class ModelDetails(ModelView):
    """One model; with ?hashes=true also its hashes (computed on demand, cached)."""

    legacy_hash: str | None = Field(None, description="A1111's old model hash (only with ?hashes=true).")


class ModelList(ResponseModel):
    models: list[ModelView]
    total: int
    limit: int
    offset: int


class SkippedModel(ResponseModel):
    path: str
    reason: str


class ScanView(ResponseModel):
    models: int = Field(description="Models found.")
    counts: dict[str, int] = Field(description="Models per type.")
    skipped: list[SkippedModel]
    missing_folders: list[str]
    seconds: float


class PresetView(ResponseModel):
    name: str
    id: str
    fields: dict[str, Any] | None = Field(description="The request fields the preset sets (null if unreadable).")
    error: str | None = Field(description="Why the preset file could not be read.")


class PresetList(ResponseModel):
    presets: list[PresetView]


class TemplateView(ResponseModel):
    name: str
    id: str
    kind: str = Field(description="prompts or neg_prompts.")
    template: str = Field(description="The text; {prompt} is replaced by the request's prompt.")
    description: str | None


class TemplateList(ResponseModel):
    templates: list[TemplateView]


class ModelListQuery(QueryModel):
    type: str | None = Field(None, description="Type names (`lora,checkpoint`) or a bit mask (`3`).")
    search: str | None = Field(None, description="Only names containing this text.")
    limit: int = Field(100, ge=1, le=500, description="Page size.")
    offset: int = Field(0, ge=0, le=10**9)


class ModelQuery(ModelListQuery):
    hashes: bool = Field(False, description="Compute (and cache) the file's hashes.")


class TemplateQuery(QueryModel):
    type: Literal["prompts", "neg_prompts"] | None = None
