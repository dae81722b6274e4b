"""The request body of a model conversion job (``POST /api/v1/models/convert``, admins only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sdrest.api.schemas.base import RequestModel
from sdrest.api.schemas.fields import ModelFile
from sdrest.api.schemas.generation import WeightType
from sdrest.modelfiles import TENSOR_RULES

__all__ = ["CONVERTIBLE", "ConvertRequest"]

#: Model folders whose files can be converted (the output lands in the same folder).
CONVERTIBLE = (
    "checkpoint",
    "diffusion_model",
    "vae",
    "text_encoder",
    "lora",
    "controlnet",
    "taesd",
    "esrgan",
    "upscaler",
    "embedding",
)


class ConvertRequest(RequestModel):
    """Quantise a model file of the library to GGUF (sd-cli ``-M convert``); the new file is
    written beside the source, in the same model folder."""

    model: ModelFile = Field(description="The model to convert, by name in its folder (see type).")
    type: Literal[CONVERTIBLE] = Field("checkpoint", description="The folder of model and of the output.")  # type: ignore[valid-type]
    output: str | None = Field(
        None,
        max_length=255,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9._ -]*$",
        description="File name of the GGUF to write, in the same folder (.gguf is "
        "added); default: the model's name + .TYPE.gguf. Never "
        "overwrites a file (409).",
    )
    weight_type: WeightType | None = Field(None, description="Weight type of every tensor it fits (default q8_0).")
    tensor_type_rules: str | None = Field(
        None,
        max_length=2000,
        pattern=TENSOR_RULES,
        description="Per-tensor types, `regex=type,...` (e.g. `^vae\\.=f16`).",
    )
    vae: ModelFile | None = Field(None, description="A VAE (vae folder) to include in the output.")
    convert_name: bool | None = Field(None, description="Rename tensors to the library's own names.")
    priority: int | None = Field(None, ge=-100, le=100, description="Higher runs first.")
    wait: bool | None = Field(None, description="Answer only when the conversion has finished.")
