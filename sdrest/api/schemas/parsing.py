"""Read a request body and validate it against a request model, with sdrest's error format.

Bodies are JSON, ``multipart/form-data`` (image fields as file parts, other fields as text,
objects and arrays such as ``hires`` or ``loras`` as JSON text) or url-encoded forms. JSON is
validated strictly (``"64"`` is not an integer, ``true`` is not a number); form text is
converted first, as forms have only text. Every problem is an
:class:`~sdrest.api.errors.ApiError` naming the field (``hires.scale``, ``loras[0].name``):

- ``400 invalid_json`` / ``415 unsupported_media_type``: not a JSON object, or another type;
- ``400 unknown_field``: a field the model does not have (a typo is never ignored);
- ``400 conflicting_fields``: a field given under two of its names (``sampler`` and ``sampler_name``);
- ``422 missing_field``: a required field is absent; ``422 invalid_field``: a wrong type or value.

:func:`parse_query` reads query parameters into a query model (``400 invalid_query``).
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from flask import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sdrest.api.errors import ApiError
from sdrest.api.schemas.base import alias_names

M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


def read_body(request: Request) -> tuple[dict[str, Any], bool]:
    """The request's fields and whether they came from a form (text values to convert)."""
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
        raise ApiError(
            415,
            "unsupported_media_type",
            "send application/json, multipart/form-data or application/x-www-form-urlencoded",
        )
    if not request.data:
        return {}, False
    try:
        body = json.loads(request.data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body, False


def parse(
    model: type[M], data: Mapping[str, Any], *, from_form: bool = False, context: Mapping[str, Any] | None = None
) -> M:
    """``data`` validated as ``model``, or the :class:`ApiError` of its first problem."""
    check_conflicts(model, data)
    if from_form:
        data = _from_form(model, data)
    try:
        return model.model_validate(data, strict=not from_form, context=dict(context or {}))
    except ValidationError as exc:
        raise api_error(exc.errors(include_url=False)) from None


def parse_query(model: type[Q], args: Mapping[str, str]) -> Q:
    """The query parameters as ``model`` (text converted), or ``400 invalid_query`` naming one."""
    try:
        return model.model_validate(dict(args.items()))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = field_path(error["loc"]) or "query"
        message = error["msg"].removeprefix("Value error, ")
        raise ApiError(400, "invalid_query", f"{name}: {message}", name) from None


def values_of(body: BaseModel) -> dict[str, Any]:
    """The fields a request gave, under their own names (nested models as dicts, nulls left out)."""
    return body.model_dump(exclude_none=True)


def check_conflicts(model: type[BaseModel], data: Mapping[str, Any]) -> None:
    for name, field in model.model_fields.items():
        given = [alias for alias in alias_names(name, field) if alias in data]
        if len(given) > 1:
            raise ApiError(
                400,
                "conflicting_fields",
                f"{given[1]}: given together with {given[0]} (names of the same field)",
                given[1],
            )


def api_error(errors: list[ErrorDetails]) -> ApiError:
    """The ApiError for pydantic's errors: unknown fields first, then in the order given."""
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        names = [field_path(e["loc"]) for e in unknown]
        also = f" (also: {', '.join(names[1:])})" if len(names) > 1 else ""
        return ApiError(400, "unknown_field", f"{names[0]}: unknown field{also}", names[0])
    error = errors[0]
    name = field_path(error["loc"]) or "body"
    if error["type"] == "missing":
        return ApiError(422, "missing_field", f"{name}: required", name)
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (int, float)):  # numbers only: text may be a password
        message += f", got {value!r}"
    return ApiError(422, "invalid_field", f"{name}: {message}", name)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("loras", 0, "name")`` -> ``loras[0].name``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _from_form(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Form text of object and array fields decoded as JSON (other text is converted by pydantic)."""
    structured = {
        alias
        for name, field in model.model_fields.items()
        if _is_structured(field.annotation)
        for alias in alias_names(name, field)
    }
    converted = dict(data)
    for key, value in data.items():
        if key in structured and isinstance(value, str):
            try:
                converted[key] = json.loads(value)
            except ValueError:
                raise ApiError(422, "invalid_field", f"{key}: must be JSON text (an object or array)", key) from None
    return converted


def _is_structured(annotation: Any) -> bool:
    """A model, or a list/dict whose items are not images (objects and arrays sent as JSON text)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_structured(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_structured(a) for a in get_args(annotation) if a is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if origin in (list, dict):
        item = get_args(annotation)[-1] if get_args(annotation) else Any
        return get_origin(item) is not Annotated or get_args(item)[0] is not Any
    return False
