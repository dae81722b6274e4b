"""The OpenAPI 3.1 document, built from the app's routes and the request field table.

Each route's summary is its view function's docstring (first line); generation request
bodies come from :mod:`sdrest.api.fields`. ``tests/api/test_openapi.py`` checks that every
``/api/v1`` route is documented, so the document cannot fall behind the code.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from sdrest import __version__
from sdrest.api.auth import LOGIN_FIELDS
from sdrest.api.fields import GENERATION_FIELDS, LOAD_FIELDS, UNLOAD_FIELDS, UPSCALE_FIELDS

_BODIES = {
    "generate.generate": GENERATION_FIELDS,
    "generate.text2img": GENERATION_FIELDS,
    "generate.img2img": GENERATION_FIELDS,
    "generate.inpainting": GENERATION_FIELDS,
    "generate.upscale": UPSCALE_FIELDS,
    "models.load": LOAD_FIELDS,
    "models.unload": UNLOAD_FIELDS,
    "auth.login": LOGIN_FIELDS,
}

_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}},
    "required": ["code", "message"]}}}


def _schema(fields: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {f.name: f.schema() for f in fields}}


def openapi_document(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        view = app.view_functions[rule.endpoint]
        doc = (view.__doc__ or rule.endpoint).strip().splitlines()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": rule.endpoint.replace(".", "_") + ("" if method == "GET" else f"_{method.lower()}"),
                "summary": doc[0],
                "tags": [rule.endpoint.split(".")[0]],
                "responses": {"default": {"description": "error",
                                          "content": {"application/json": {"schema": _ERROR}}}},
            }
            if len(doc) > 1:
                operation["description"] = " ".join(line.strip() for line in doc[1:]).strip()
            params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in rule.arguments]
            if params:
                operation["parameters"] = params
            if rule.endpoint in _BODIES:
                schema = _schema(_BODIES[rule.endpoint])
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": schema}, "multipart/form-data": {"schema": schema}}}
                operation["responses"]["202"] = {"description": "queued: the job, with a Location header"}
                operation["responses"]["200"] = {"description": "finished (wait=true): the job with its images"}
            elif rule.endpoint.endswith("events"):
                operation["responses"]["200"] = {"description": "text/event-stream of job events",
                                                 "content": {"text/event-stream": {}}}
            else:
                operation["responses"]["200"] = {"description": "OK"}
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "sdrest", "version": __version__,
                 "description": "Self-hosted Stable Diffusion server around stable-diffusion.cpp."},
        "paths": dict(sorted(paths.items())),
    }
