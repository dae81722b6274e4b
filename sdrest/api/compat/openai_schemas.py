"""OpenAI images API bodies (``/v1/images/generations``, ``/v1/images/edits``, ``/v1/models``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    # Extra fields are sdrest's own generation fields (steps, cfg_scale, sampler, seed,
    # negative_prompt, ...): checked by sdrest's validation, so a typo is still a 400.
    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1, max_length=32000)
    model: str | None = Field(
        None,
        description="A checkpoint name (GET /v1/models); OpenAI's own model names "
        "(dall-e-*, gpt-image-*) mean the loaded model.",
    )
    n: int = Field(1, ge=1, le=16)
    size: str | None = Field(None, description="`WIDTHxHEIGHT` (multiples of 8) or `auto`.")
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(None, ge=0, le=100)
    quality: str | None = Field(None, max_length=32, description="Accepted and ignored: send steps for more quality.")
    background: Literal["transparent", "opaque", "auto"] | None = Field(
        None, description="`transparent` is not supported (400)."
    )
    style: Literal["vivid", "natural"] | None = Field(None, description="Accepted and ignored.")
    moderation: Literal["low", "auto"] | None = Field(None, description="Accepted and ignored (no moderation).")
    user: str | None = Field(None, max_length=256, description="Accepted and ignored (jobs belong to the caller).")
    safety_identifier: str | None = Field(None, max_length=256, description="Accepted and ignored.")
    stream: bool | None = Field(None, description="`true` is not supported (400).")
    partial_images: int | None = Field(None, description="Accepted and ignored.")


class ImageGenerationRequest(_Request):
    pass


class ImageEditRequest(_Request):
    image: Any = Field(
        None, description="The image (multipart file, base64 or data URL); `image[]` for several (the first is used)."
    )
    images: list[dict[str, Any]] | None = Field(None, description='JSON form: `[{"image_url": "data:..."}]`.')
    mask: Any = Field(
        None,
        description="PNG whose transparent pixels mark the area to edit (multipart file, or "
        'JSON `{"image_url": ...}`); default: the image\'s own transparency.',
    )
    input_fidelity: Literal["high", "low"] | None = Field(None, description="Accepted and ignored.")


class ImageData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    created: int
    data: list[ImageData]
    background: str
    output_format: str
    quality: str
    size: str


class ModelItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object: Literal["list"]
    data: list[ModelItem]


class OpenAIErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """OpenAI's error body."""

    model_config = ConfigDict(extra="forbid")
    error: OpenAIErrorDetail
