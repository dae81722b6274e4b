"""The model library: where model files live and how names resolve to them.

The public names below are re-exported lazily (PEP 562) so that importing
``sdrest.models.paths`` - which the worker process does - does not also pull in the
scanner, SQLite and YAML.
"""

from __future__ import annotations

from sdrest._lazy import lazy_exports

_EXPORTS = {
    "ModelType": "types", "ModelFolders": "types", "parse_type_filter": "types",
    "Detection": "detect",  # not detect() itself: the submodule of that name shadows it
    "HashCache": "hashing", "sha256_file": "hashing", "short_hash": "hashing", "legacy_model_hash": "hashing",
    "ModelLibrary": "scanner", "ModelEntry": "scanner", "ScanResult": "scanner", "FileHashes": "scanner",
    "load_preset": "presets", "load_template": "presets", "apply_template": "presets",
    "parse_lora_tags": "presets", "PromptTemplate": "presets",
    "ModelNotFoundError": "paths", "resolve_model": "paths", "WEIGHT_EXTENSIONS": "paths",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)
