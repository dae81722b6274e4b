"""GET /api/v1/models/recipes: the shipped recipe catalogue with what this server has installed."""

from __future__ import annotations

from pydantic import Field

from sdrest.api.schemas.base import ResponseModel


class RecipeFileView(ResponseModel):
    source: str = Field(description="Where it comes from, in the source syntax (hf:OWNER/REPO/PATH@REV or a URL).")
    type: str = Field(description="The model folder it goes to (checkpoint, vae, text_encoder, ...).")
    name: str = Field(description="Its file name in that folder.")
    field: str | None = Field(description="The request field the recipe's preset binds it to (null: a helper file).")
    size: int | None = Field(description="Bytes, close to the hub's (some rounded; null: not known).")
    sha256: str | None = Field(description="Its SHA256 where the catalogue knows it (the hub's is verified anyway).")
    installed: bool = Field(description="The file is in its folder on this server.")


class RecipeView(ResponseModel):
    name: str = Field(description="What `sdrest pull`, a download's `recipe` and, once installed, `model` take.")
    title: str
    family: str = Field(description="Model family (sd1, sdxl, flux, sd3, z_image, ...; helper: TAESD, ESRGAN).")
    license: str
    memory_mb: int = Field(description="Estimated memory its docs' settings need to run, in MiB.")
    size: int | None = Field(description="Bytes of all its files (null when one size is not known).")
    selectable: bool = Field(description="True: once installed it is one model (`model: <name>`); false: a helper.")
    installed: bool = Field(description="Every file is there (and, for a model, its preset).")
    missing_bytes: int | None = Field(description="Bytes still to download (null when a missing size is unknown).")
    preset: dict[str, object] = Field(description="The request fields `model: <name>` expands to.")
    sd_cli_flags: list[str] = Field(description="The sd-cli arguments of its docs that the preset reproduces.")
    files: list[RecipeFileView]


class RecipeList(ResponseModel):
    recipes: list[RecipeView]
