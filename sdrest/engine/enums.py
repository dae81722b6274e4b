"""Enum fields by name, through the library's own ``str_to_*``/``*_name`` functions.

Every enum the C API can parse from text is listed in :data:`ENUM_KINDS`, keyed by its C
type name. A value may be given as the library's name (``"euler_a"``, ``"karras"``,
``"q8_0"``) or as the enum's integer; anything else raises ``ValueError`` listing the valid
names, before any native code that would act on it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdrest._native import ffi


@dataclass(frozen=True)
class EnumKind:
    """How one C enum converts: its parse/name functions and the size of its name range."""

    ctype: str  # e.g. "enum sample_method_t"
    parse_fn: str  # str -> value, returns the COUNT sentinel when unknown
    name_fn: str  # value -> const char* (NULL or "" for holes)
    count: int  # the *_COUNT sentinel


def _kind(ctype: str, parse_fn: str, name_fn: str, count_name: str) -> EnumKind:
    # Constants come from the cffi declarations, so no library needs to be open here.
    return EnumKind(ctype, parse_fn, name_fn, ffi.typeof(ctype).relements[count_name])


ENUM_KINDS: dict[str, EnumKind] = {
    kind.ctype: kind
    for kind in (
        _kind("enum sd_type_t", "str_to_sd_type", "sd_type_name", "SD_TYPE_COUNT"),
        _kind("enum rng_type_t", "str_to_rng_type", "sd_rng_type_name", "RNG_TYPE_COUNT"),
        _kind("enum sample_method_t", "str_to_sample_method", "sd_sample_method_name", "SAMPLE_METHOD_COUNT"),
        _kind("enum scheduler_t", "str_to_scheduler", "sd_scheduler_name", "SCHEDULER_COUNT"),
        _kind("enum prediction_t", "str_to_prediction", "sd_prediction_name", "PREDICTION_COUNT"),
        _kind("enum preview_t", "str_to_preview", "sd_preview_name", "PREVIEW_COUNT"),
        _kind("enum lora_apply_mode_t", "str_to_lora_apply_mode", "sd_lora_apply_mode_name", "LORA_APPLY_MODE_COUNT"),
        _kind(
            "enum sd_hires_upscaler_t", "str_to_sd_hires_upscaler", "sd_hires_upscaler_name", "SD_HIRES_UPSCALER_COUNT"
        ),
    )
}

#: The name of each enum's ``*_COUNT`` sentinel, which the ``*_init`` functions use to mean
#: "let the library choose" (e.g. the model's default sampler or weight type).
DEFAULT_NAME = "default"

# Enums the library has no text functions for: names come from the declarations.
_PLAIN_ENUM_PREFIX = {
    "enum sd_cache_mode_t": "SD_CACHE_",
    "enum sd_log_level_t": "SD_LOG_",
    "enum sd_cancel_mode_t": "SD_CANCEL_",
}


def enum_names(lib: Any, ctype: str) -> dict[str, int]:
    """All valid names of an enum, mapped to their values, in value order."""
    kind = ENUM_KINDS.get(ctype)
    if kind is None:
        prefix = _PLAIN_ENUM_PREFIX[ctype]
        return {name[len(prefix) :].lower(): value for value, name in sorted(ffi.typeof(ctype).elements.items())}
    name_fn = getattr(lib, kind.name_fn)
    names: dict[str, int] = {}
    for value in range(kind.count):
        if value not in ffi.typeof(ctype).elements:
            continue  # holes such as the removed SD_TYPE_Q4_2
        raw = name_fn(value)
        if raw != ffi.NULL:
            text = ffi.string(raw).decode()
            if text and text not in ("NONE", "unknown"):
                names[text] = value
    return names


def parse_enum(lib: Any, ctype: str, value: Any, field: str) -> int:
    """Convert a name or integer to the C enum value, or raise ``ValueError`` naming ``field``."""
    elements = ffi.typeof(ctype).elements
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a name, got {value!r}")
    if isinstance(value, int):
        if value in elements:
            return value  # the *_COUNT sentinel is the library's "default" value
        raise ValueError(f"{field}: {value} is not a valid {ctype} value")
    if isinstance(value, str):
        kind = ENUM_KINDS.get(ctype)
        if kind is not None and value == DEFAULT_NAME:
            return kind.count
        if kind is not None:
            parsed = int(getattr(lib, kind.parse_fn)(value.encode()))
            if parsed != kind.count and parsed in elements:
                return parsed
        else:
            names = enum_names(lib, ctype)
            if value.lower() in names:
                return names[value.lower()]
        valid = ", ".join([*enum_names(lib, ctype), *([DEFAULT_NAME] if kind else [])])
        raise ValueError(f"{field}: unknown value {value!r}; valid: {valid}")
    raise ValueError(f"{field}: expected a name (string), got {type(value).__name__}")


def enum_name(lib: Any, ctype: str, value: int) -> str:
    """The library's name for a value (falls back to the C constant name)."""
    kind = ENUM_KINDS.get(ctype)
    if kind is not None and value == kind.count:
        return DEFAULT_NAME
    if kind is not None and 0 <= value < kind.count:
        raw = getattr(lib, kind.name_fn)(value)
        if raw != ffi.NULL:
            return ffi.string(raw).decode()
    for name, v in enum_names(lib, ctype).items():
        if v == value:
            return name
    return str(value)
