"""The shipped catalogue of ready model setups (``recipes.yaml`` beside this module).

A recipe is the list of files one model needs (Flux: diffusion model, ``clip_l``, ``t5xxl``,
``ae``), each with its source in the hub syntax and the typed folder it goes to, plus the preset
that binds them: written to ``presets/<recipe>.json`` once the files are there, it makes the
recipe one selectable model (a request's ``model: flux1-schnell-q4`` expands to its components
and sampling defaults, see :func:`sdrest.api.jobparams.with_preset`). Helpers (TAESD, ESRGAN)
have files only.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from sdrest.errors import SdrestError
from sdrest.models.types import ModelFolders, ModelType

__all__ = ["Recipe", "RecipeError", "RecipeFile", "file_name_of", "load_recipes", "write_preset"]

CATALOGUE = "recipes.yaml"


class RecipeError(SdrestError, ValueError):
    """The catalogue (or a recipe name) is wrong; the message names it."""


@dataclass(frozen=True)
class RecipeFile:
    """One file of a recipe."""

    source: str  # hub syntax: hf:OWNER/REPO/PATH@REV, civitai:ID or an https:// URL
    type: ModelType  # the typed folder it goes to
    name: str  # the file name in that folder
    field: str | None  # the request field that binds it in the preset (None: a helper file)
    size: int | None  # bytes, close to the hub's (some rounded; the download checks the hub's own)
    sha256: str | None  # where known; the hub's LFS hash is verified anyway

    def path(self, folders: ModelFolders) -> Path:
        return folders.path(self.type) / self.name

    def installed(self, folders: ModelFolders) -> bool:
        return self.path(folders).is_file()


@dataclass(frozen=True)
class Recipe:
    """One ready model setup of the catalogue."""

    name: str
    title: str
    family: str
    license: str
    memory_mb: int  # an estimate of what running it needs, so a UI can mark what fits
    files: tuple[RecipeFile, ...]
    defaults: tuple[tuple[str, Any], ...]  # the docs' sampling settings as request fields
    sd_cli_flags: tuple[str, ...]  # the docs' sd-cli arguments, files named by their name

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)

    @property
    def selectable(self) -> bool:
        """True when the recipe is a model (its preset binds files), False for a helper."""
        return any(f.field for f in self.files)

    def preset(self) -> dict[str, Any]:
        """The request fields of the preset: each component by its file name, then the defaults."""
        bound = {f.field: f.name for f in self.files if f.field}
        return {**bound, **dict(self.defaults)}

    def installed(self, folders: ModelFolders) -> tuple[bool, ...]:
        """For each file (in order): is it in its folder."""
        return tuple(f.installed(folders) for f in self.files)

    def missing(self, folders: ModelFolders) -> tuple[RecipeFile, ...]:
        return tuple(f for f in self.files if not f.installed(folders))

    def preset_path(self, folders: ModelFolders) -> Path:
        return folders.path(ModelType.PRESETS) / f"{self.name}.json"

    def is_installed(self, folders: ModelFolders) -> bool:
        """Every file is there and, for a model, the preset that makes it selectable."""
        return not self.missing(folders) and (not self.selectable or self.preset_path(folders).is_file())


def file_name_of(source: str) -> str:
    """The file name a source's last path segment gives (``hf:o/r/dir/x.gguf@main`` -> ``x.gguf``)."""
    path = source[3:].rsplit("@", 1)[0] if source.startswith("hf:") else urllib.parse.urlsplit(source).path
    return PurePosixPath(path).name


#: An operator's catalogue is hand-written text; anything bigger is not one.
MAX_CATALOGUE_BYTES = 1 << 20


@cache
def _shipped() -> dict[str, Recipe]:
    text = resources.files("sdrest.models").joinpath(CATALOGUE).read_text(encoding="utf-8")
    return parse_catalogue(yaml.safe_load(text))


def load_recipes(extra: Path | None = None) -> dict[str, Recipe]:
    """The catalogue by name: the shipped recipes (read once; package data), then those of the
    operator's ``extra`` file (``--recipes``, the same format), read at each call so an edit
    shows at once. A name of the shipped catalogue may not be taken again."""
    recipes = _shipped()
    if extra is None:
        return recipes
    path = Path(extra)
    try:
        if path.stat().st_size > MAX_CATALOGUE_BYTES:
            raise RecipeError(f"{path}: larger than {MAX_CATALOGUE_BYTES} bytes: not a recipe catalogue")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe catalogue ({exc})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: invalid YAML ({type(exc).__name__})") from None
    own = parse_catalogue(data, str(path))
    taken = sorted(set(own) & set(recipes))
    if taken:
        raise RecipeError(f"{path}: recipe {taken[0]!r} is a shipped recipe; give yours another name")
    return {**recipes, **own}


def parse_catalogue(data: Any, where: str = CATALOGUE) -> dict[str, Recipe]:
    if not isinstance(data, list):
        raise RecipeError(f"{where}: a list of recipes expected")
    recipes: dict[str, Recipe] = {}
    for index, item in enumerate(data):
        recipe = _recipe(item, f"{where}[{index}]")
        if recipe.name in recipes:
            raise RecipeError(f"{where}: recipe {recipe.name!r} appears twice")
        recipes[recipe.name] = recipe
    return recipes


def _recipe(item: Any, where: str) -> Recipe:
    if not isinstance(item, dict):
        raise RecipeError(f"{where}: a mapping expected")
    try:
        name = str(item["name"])
        files = tuple(_file(f, f"{where}.files[{i}]") for i, f in enumerate(item["files"]))
        preset = item.get("preset") or {}
        if not isinstance(preset, dict):
            raise RecipeError(f"{where}.preset: a mapping of request fields expected")
        return Recipe(
            name=name,
            title=str(item["title"]),
            family=str(item["family"]),
            license=str(item["license"]),
            memory_mb=int(item["memory_mb"]),
            files=files,
            defaults=tuple(preset.items()),
            sd_cli_flags=tuple(str(flag) for flag in item.get("sd_cli") or ()),
        )
    except KeyError as exc:
        raise RecipeError(f"{where}: {exc.args[0]} missing") from None


def _file(item: Any, where: str) -> RecipeFile:
    if not isinstance(item, dict):
        raise RecipeError(f"{where}: a mapping expected")
    try:
        source = str(item["source"])
        try:
            model_type = ModelType.from_name(str(item["type"]))
        except ValueError as exc:
            raise RecipeError(f"{where}.type: {exc}") from None
        size = item.get("size")
        return RecipeFile(
            source=source,
            type=model_type,
            name=str(item.get("name") or file_name_of(source)),
            field=item.get("field"),
            size=None if size is None else int(size),
            sha256=item.get("sha256"),
        )
    except KeyError as exc:
        raise RecipeError(f"{where}: {exc.args[0]} missing") from None


def find_recipe(name: str, extra: Path | None = None) -> Recipe:
    """The recipe called ``name``; :class:`RecipeError` naming it and the known ones otherwise."""
    recipes = load_recipes(extra)
    try:
        return recipes[name]
    except KeyError:
        raise RecipeError(f"unknown recipe {name!r}; known recipes: {', '.join(recipes)}") from None


def write_preset(recipe: Recipe, folders: ModelFolders) -> Path | None:
    """Write ``presets/<recipe>.json`` (atomically), the preset that makes an installed recipe
    one selectable model; ``None`` for a helper, which binds nothing."""
    if not recipe.selectable:
        return None
    target = recipe.preset_path(folders)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{recipe.name}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(recipe.preset(), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
