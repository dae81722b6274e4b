"""What the build recorded about the native library, readable without loading it (or cffi)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUILD_INFO_PATH = Path(__file__).resolve().parent / "build_info.json"


def build_info() -> dict[str, Any]:
    """Source, version and backends of the compiled library (empty if unknown)."""
    try:
        return json.loads(BUILD_INFO_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
