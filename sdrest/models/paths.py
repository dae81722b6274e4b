"""Resolve user-given model names to files, never outside their folder.

A name is a path relative to its type's folder (``sub/folder/model.safetensors``), with or
without its extension. Absolute paths, ``..`` and symlinks that lead outside the folder are
refused: a request must not be able to make the server read an arbitrary file.
"""

from __future__ import annotations

from pathlib import Path

from sdrest.errors import SdrestError

WEIGHT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".gguf", ".sft", ".bin")


class ModelNotFoundError(SdrestError, LookupError):
    """No model of that name (or the name tries to leave its folder). ``field`` names the request field."""

    def __init__(self, field: str, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{field}: no model named {name!r}")
        self.field = field
        self.name = name


class InvalidModelName(ModelNotFoundError):
    """The name itself is not acceptable (absolute, ``..``, empty, or leads outside the folder)."""


def resolve_model(
    root: Path, name: str, field: str, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS, allow_symlinks: bool = False
) -> Path:
    """The file ``name`` names inside ``root``, or raise :class:`ModelNotFoundError`."""
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise InvalidModelName(field, str(name), f"{field}: must be a model name")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise InvalidModelName(field, name, f"{field}: {name!r} is not a name inside the model folder")
    root = root.resolve()
    candidates = (
        [relative]
        if relative.suffix.lower() in extensions
        else [relative.with_name(relative.name + ext) for ext in extensions] + [relative]
    )
    for candidate in candidates:
        path = root / candidate
        if not path.is_file():
            continue
        real = path.resolve()
        if not allow_symlinks and not real.is_relative_to(root):
            raise InvalidModelName(field, name, f"{field}: {name!r} leads outside the model folder")
        return real if allow_symlinks else path.resolve()
    raise ModelNotFoundError(field, name)
