"""Read and validate request bodies against the field table of :mod:`sdrest.api.fields`.

JSON bodies, ``multipart/form-data`` (image fields as file parts, other fields as text, objects
as JSON text) and url-encoded forms are accepted. Every problem is an
:class:`~sdrest.api.errors.ApiError` naming the field: unknown fields (400), wrong types and
out-of-range values (422).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Request
from werkzeug.datastructures import FileStorage

from sdrest.api.errors import ApiError, invalid
from sdrest.api.fields import Field

Capabilities = Mapping[str, Sequence[str]]


def read_body(request: Request) -> tuple[dict[str, Any], bool]:
    """The request's fields and whether they came from a form (text values to coerce)."""
    mimetype = request.mimetype
    if mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data: dict[str, Any] = {}
        for key in request.form:
            values = request.form.getlist(key)
            data[key] = values if len(values) > 1 else values[0]
        for key in request.files:
            files = request.files.getlist(key)
            data[key] = files if len(files) > 1 or key.endswith("images") else files[0]
        return data, True
    if mimetype != "application/json" and (request.content_length or request.data):
        raise ApiError(415, "unsupported_media_type",
                       "send application/json, multipart/form-data or application/x-www-form-urlencoded")
    if not request.data:
        return {}, False
    try:
        body = json.loads(request.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body, False


def validate(data: Mapping[str, Any], fields: Sequence[Field], *, mode: str | None, capabilities: Capabilities,
             from_form: bool = False, allowed_extra: Sequence[str] = ()) -> dict[str, Any]:
    """Check ``data`` against ``fields``; return the values under their canonical names."""
    by_name: dict[str, Field] = {}
    for field in fields:
        by_name[field.name] = field
        for alias in field.aliases:
            by_name[alias] = field
    unknown = sorted(k for k in data if k not in by_name and k not in allowed_extra)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}", unknown[0])
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in allowed_extra:
            values[key] = raw
            continue
        field = by_name[key]
        if field.name in values:
            raise ApiError(400, "conflicting_fields", f"{key}: given together with {field.name} (an alias)", key)
        if mode is not None and mode not in field.modes:
            raise ApiError(400, "field_not_allowed", f"{key}: not used by {mode}", key)
        if raw is None:
            continue
        values[field.name] = check_value(field, raw, key, capabilities, from_form)
    return values


def check_value(field: Field, raw: Any, name: str, capabilities: Capabilities, from_form: bool) -> Any:
    """One value, converted and range-checked, or an ApiError naming ``name``."""
    kind = field.kind
    if from_form and isinstance(raw, str) and kind in ("integer", "number", "boolean", "object", "array"):
        raw = _from_text(field, raw, name)
    if kind in ("string", "choice"):
        if not isinstance(raw, str):
            raise invalid(name, f"must be a string, got {_type_name(raw)}")
        if field.max_length and len(raw) > field.max_length:
            raise invalid(name, f"longer than {field.max_length} characters")
        choices = field.choices if isinstance(field.choices, tuple) else (
            capabilities.get(field.choices) if isinstance(field.choices, str) else None)
        if choices is not None and raw not in choices:
            raise invalid(name, f"unknown value {raw!r}; valid: {', '.join(choices)}")
        return raw
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            else:
                raise invalid(name, f"must be an integer, got {_type_name(raw)}")
        return _check_range(field, raw, name)
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise invalid(name, f"must be a finite number, got {_type_name(raw)}")
        return float(_check_range(field, raw, name))
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise invalid(name, f"must be true or false, got {_type_name(raw)}")
        return raw
    if kind == "image":
        if not isinstance(raw, (str, FileStorage)):
            raise invalid(name, "must be an image: base64, data URL, http(s) URL or file upload", status=422)
        return raw
    if kind == "images":
        items = raw if isinstance(raw, list) else [raw]
        if field.max_items and len(items) > field.max_items:
            raise invalid(name, f"at most {field.max_items} images")
        for index, item in enumerate(items):
            if not isinstance(item, (str, FileStorage)):
                raise invalid(f"{name}[{index}]", "must be an image")
        return items
    if kind == "object":
        if not isinstance(raw, dict):
            raise invalid(name, f"must be an object, got {_type_name(raw)}")
        return validate_object(field, raw, name, capabilities)
    if kind == "array":
        if not isinstance(raw, list):
            raise invalid(name, f"must be an array, got {_type_name(raw)}")
        if field.max_items and len(raw) > field.max_items:
            raise invalid(name, f"at most {field.max_items} items")
        if not field.properties:
            number = Field(name, "number", "")
            return [check_value(number, item, f"{name}[{i}]", capabilities, False) for i, item in enumerate(raw)]
        element = Field(name, "object", "", properties=field.properties)
        out = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raise invalid(f"{name}[{index}]", f"must be an object, got {_type_name(item)}")
            out.append(validate_object(element, item, f"{name}[{index}]", capabilities))
        return out
    raise AssertionError(kind)  # pragma: no cover


def validate_object(field: Field, raw: Mapping[str, Any], name: str, capabilities: Capabilities) -> dict[str, Any]:
    known = {p.name: p for p in field.properties}
    unknown = sorted(k for k in raw if k not in known)
    if unknown:
        raise ApiError(400, "unknown_field", f"{name}: unknown field(s): {', '.join(unknown)}",
                       f"{name}.{unknown[0]}")
    return {key: check_value(known[key], value, f"{name}.{key}", capabilities, False)
            for key, value in raw.items() if value is not None}


def _check_range(field: Field, value: float, name: str) -> float:
    if field.minimum is not None and value < field.minimum:
        raise invalid(name, f"must be at least {_num(field.minimum)}, got {_num(value)}")
    if field.maximum is not None and value > field.maximum:
        raise invalid(name, f"must be at most {_num(field.maximum)}, got {_num(value)}")
    if field.multiple_of and value % field.multiple_of:
        raise invalid(name, f"must be a multiple of {field.multiple_of}, got {_num(value)}")
    return value


def _from_text(field: Field, text: str, name: str) -> Any:
    try:
        if field.kind == "integer":
            return int(text)
        if field.kind == "number":
            return float(text)
        if field.kind == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        return json.loads(text)
    except ValueError:
        raise invalid(name, f"{text[:40]!r} is not a valid {field.kind}") from None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
