"""The model library: where model files live and how names resolve to them.

The public names below are re-exported lazily (PEP 562) so that importing
``sdrest.models.paths`` - which the worker process does - does not also pull in the
scanner, SQLite and YAML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdrest._lazy import lazy_exports

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and editors
    from sdrest.models.detect import Detection
    from sdrest.models.hashing import HashCache, legacy_model_hash, sha256_file, short_hash
    from sdrest.models.paths import WEIGHT_EXTENSIONS, ModelNotFoundError, resolve_model
    from sdrest.models.presets import PromptTemplate, apply_template, load_preset, load_template, parse_lora_tags
    from sdrest.models.scanner import FileHashes, ModelEntry, ModelLibrary, ScanResult
    from sdrest.models.types import ModelFolders, ModelType, parse_type_filter

_EXPORTS = {
    "ModelType": "types",
    "ModelFolders": "types",
    "parse_type_filter": "types",
    "Detection": "detect",  # not detect() itself: the submodule of that name shadows it
    "HashCache": "hashing",
    "sha256_file": "hashing",
    "short_hash": "hashing",
    "legacy_model_hash": "hashing",
    "ModelLibrary": "scanner",
    "ModelEntry": "scanner",
    "ScanResult": "scanner",
    "FileHashes": "scanner",
    "load_preset": "presets",
    "load_template": "presets",
    "apply_template": "presets",
    "parse_lora_tags": "presets",
    "PromptTemplate": "presets",
    "ModelNotFoundError": "paths",
    "resolve_model": "paths",
    "WEIGHT_EXTENSIONS": "paths",
}

__all__ = [  # a literal, so that linters and type checkers see the re-exports
    "WEIGHT_EXTENSIONS",
    "Detection",
    "FileHashes",
    "HashCache",
    "ModelEntry",
    "ModelFolders",
    "ModelLibrary",
    "ModelNotFoundError",
    "ModelType",
    "PromptTemplate",
    "ScanResult",
    "apply_template",
    "legacy_model_hash",
    "load_preset",
    "load_template",
    "parse_lora_tags",
    "parse_type_filter",
    "resolve_model",
    "sha256_file",
    "short_hash",
]

__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)
