"""Model types: their bit values, API names, folders and file extensions.

The bit values are the product spec's (``GET /api/v1/models?type=3`` means LoRAs and
checkpoints), so they must never be renumbered; new types take the next free bit.
Everything else that depends on a type (where its files live, which extensions count)
is derived from the one table below so the scanner, the name resolver and the API
cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ModelFolders",
    "ModelType",
    "TypeInfo",
    "parse_type_filter",
]

#: Extensions every weight type accepts on top of its spec list: stable-diffusion.cpp
#: loads GGUF (quantised) files and ``.sft`` (a common short name for safetensors).
_LIBRARY_EXTRA = (".gguf", ".sft")
_WEIGHTS = (".safetensors", ".pt", ".ckpt", *_LIBRARY_EXTRA)
#: ESRGANs: the spec's .pth/.pt, plus safetensors (the library loads safetensors ESRGANs).
_UPSCALERS = (".pth", ".pt", ".safetensors", *_LIBRARY_EXTRA)


class ModelType(enum.IntFlag):
    """A model type, or (combined with ``|``) a set of types for filtering."""

    LORA = 1
    CHECKPOINT = 2
    VAE = 4
    PRESETS = 8
    PROMPTS = 16
    NEG_PROMPTS = 32
    TAESD = 64
    ESRGAN = 128
    CONTROLNET = 256
    UPSCALER = 512
    EMBEDDING = 1024
    DIFFUSION_MODEL = 2048
    TEXT_ENCODER = 4096

    @property
    def info(self) -> TypeInfo:
        """The table row of a single type (``ValueError`` for a combination of types)."""
        try:
            return _INFO[self]
        except KeyError:
            raise ValueError(f"{self!r} is not a single model type") from None

    @property
    def api_name(self) -> str:
        """Lower-case name used in the API and in model ids (``"lora"``)."""
        return self.info.api_name

    @property
    def folder(self) -> str:
        """Default folder under the models dir (``"lora"``, ``"checkpoints"``)."""
        return self.info.folder

    @property
    def extensions(self) -> tuple[str, ...]:
        """Lower-case file extensions (with the dot) that count as this type."""
        return self.info.extensions

    @property
    def is_weights(self) -> bool:
        """True for tensor files (detection reads their headers); False for text/config types."""
        return self.info.weights

    @classmethod
    def singles(cls) -> tuple[ModelType, ...]:
        """Every single type in bit order (iteration order of the scan and of listings)."""
        return tuple(_INFO)

    @classmethod
    def from_name(cls, name: str) -> ModelType:
        """The type called ``name`` (API name, enum name or folder name, any case)."""
        key = name.strip().lower()
        try:
            return _BY_NAME[key]
        except KeyError:
            raise ValueError(f"unknown model type {name!r}; valid types: {', '.join(_API_NAMES)}") from None

    def members(self) -> tuple[ModelType, ...]:
        """The single types contained in this (possibly combined) value."""
        return tuple(t for t in _INFO if t & self)


@dataclass(frozen=True)
class TypeInfo:
    """What the rest of the library needs to know about one type."""

    api_name: str
    folder: str
    extensions: tuple[str, ...]
    weights: bool = True


_INFO: dict[ModelType, TypeInfo] = {
    ModelType.LORA: TypeInfo("lora", "lora", _WEIGHTS),
    ModelType.CHECKPOINT: TypeInfo("checkpoint", "checkpoints", _WEIGHTS),
    ModelType.VAE: TypeInfo("vae", "vae", _WEIGHTS),
    ModelType.PRESETS: TypeInfo("presets", "presets", (".json", ".yaml", ".yml"), weights=False),
    ModelType.PROMPTS: TypeInfo("prompts", "prompts", (".txt", ".json"), weights=False),
    ModelType.NEG_PROMPTS: TypeInfo("neg_prompts", "neg_prompts", (".txt", ".json"), weights=False),
    ModelType.TAESD: TypeInfo("taesd", "taesd", _WEIGHTS),
    ModelType.ESRGAN: TypeInfo("esrgan", "esrgan", _UPSCALERS),
    ModelType.CONTROLNET: TypeInfo("controlnet", "controlnet", _WEIGHTS),
    ModelType.UPSCALER: TypeInfo("upscaler", "upscaler", _UPSCALERS),
    ModelType.EMBEDDING: TypeInfo("embedding", "embeddings", _WEIGHTS),
    ModelType.DIFFUSION_MODEL: TypeInfo("diffusion_model", "diffusion_models", _WEIGHTS),
    ModelType.TEXT_ENCODER: TypeInfo("text_encoder", "text_encoders", _WEIGHTS),
}

_API_NAMES = tuple(info.api_name for info in _INFO.values())

#: Accepted spellings: the API name, the enum name and the folder name ("checkpoints").
_BY_NAME: dict[str, ModelType] = {}
for _type, _info in _INFO.items():
    for _alias in (_info.api_name, str(_type.name).lower(), _info.folder):
        _BY_NAME.setdefault(_alias, _type)

_ALL_BITS = 0
for _type in _INFO:
    _ALL_BITS |= int(_type)


def parse_type_filter(value: str) -> ModelType:
    """Parse an API ``type`` filter: ``"lora"``, ``"lora,vae"`` or a bit mask ``"3"``.

    Comma-separated parts may mix names and masks; the result is their union. A mask
    with bits no type has, or one that is 0, is refused rather than silently matching
    nothing, so a client typo shows up as a 400 instead of an empty list.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"empty model type filter; valid types: {', '.join(_API_NAMES)} or a bit mask")
    result = ModelType(0)
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            mask = int(part)
            if mask == 0 or mask & ~_ALL_BITS:
                raise ValueError(
                    f"invalid model type mask {part!r}: must be a combination of "
                    f"{', '.join(f'{t.api_name}={int(t)}' for t in _INFO)}"
                )
            result |= ModelType(mask)
        else:
            result |= ModelType.from_name(part)
    if not result:
        raise ValueError(f"empty model type filter; valid types: {', '.join(_API_NAMES)} or a bit mask")
    return result


def _coerce_type(key: ModelType | str) -> ModelType:
    if isinstance(key, ModelType):
        key.info  # noqa: B018 - raises for combined flags
        return key
    return ModelType.from_name(key)


@dataclass(frozen=True)
class ModelFolders:
    """Where each type's files live: ``<models_dir>/<default folder>`` unless overridden.

    Why a separate object: settings, the scanner and name resolution must all agree on
    the folders, and tests need to point them at a temp dir in one line.
    """

    models_dir: Path
    paths: Mapping[ModelType, Path] = field(default_factory=dict)

    @classmethod
    def build(
        cls, models_dir: Path | str, overrides: Mapping[ModelType | str, Path | str] | None = None
    ) -> ModelFolders:
        """Folders under ``models_dir``; ``overrides`` maps a type (or its name) to a folder,
        relative ones under ``models_dir``, absolute (or ``~``) ones as given."""
        root = Path(models_dir).expanduser()
        paths = {t: root / info.folder for t, info in _INFO.items()}
        for key, folder in (overrides or {}).items():
            model_type = _coerce_type(key)
            folder = Path(folder).expanduser()
            paths[model_type] = folder if folder.is_absolute() else root / folder
        return cls(root, paths)

    def path(self, model_type: ModelType) -> Path:
        """The folder of one type."""
        model_type = _coerce_type(model_type)
        try:
            return self.paths[model_type]
        except KeyError:
            return self.models_dir / model_type.folder

    __getitem__ = path

    def items(self) -> Iterable[tuple[ModelType, Path]]:
        """``(type, folder)`` for every single type, in bit order."""
        return ((t, self.path(t)) for t in _INFO)
