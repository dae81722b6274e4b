"""Base classes of the API's request and response models, and the one error body.

Request models forbid unknown fields (a typo is a ``400 unknown_field``, never silently
ignored) and accept each field under its aliases (``sampler_name`` for ``sampler``); the JSON
Schema lists the aliases as properties too, so a client validating its request against the
document accepts what the server accepts. Response models describe every key the server
sends; ``tests/api/test_openapi_responses.py`` validates real answers against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic.json_schema import GetJsonSchemaHandler
from pydantic_core import CoreSchema


def alias_names(name: str, field: FieldInfo) -> list[str]:
    """Every name a request may use for ``field``: its own first, then its aliases."""
    names = [name]
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
    names += [c for c in choices if isinstance(c, str) and c not in names]
    return names


class RequestModel(BaseModel):
    """A request body (or a nested object of one): unknown fields refused, aliases accepted."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=False)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        properties = target.get("properties", {})
        for name, field in cls.model_fields.items():
            names = alias_names(name, field)
            primary = next((n for n in names[1:] + names[:1] if n in properties), None)
            for alias in names:
                if primary is not None and alias != primary:
                    properties[alias] = {**properties[primary], "description": f"Alias of `{primary}`."}
        return schema


class ResponseModel(BaseModel):
    """An answer body: every key the server sends is declared (undeclared keys fail the tests)."""

    model_config = ConfigDict(extra="forbid")


class QueryModel(BaseModel):
    """Query parameters (unknown ones are ignored, as browsers and proxies add their own)."""

    model_config = ConfigDict(extra="ignore")


class ErrorDetail(ResponseModel):
    code: str = Field(description="Machine-readable error code, e.g. `invalid_field`.")
    message: str = Field(description="What went wrong; starts with the field's name when one is at fault.")
    field: str | None = Field(
        description="The request field, query parameter or path part at fault "
        "(`hires.scale`, `loras[0].name`), or null."
    )


class ErrorResponse(ResponseModel):
    """The one error format of the API: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorDetail
