"""The OpenAPI 3.1 document, built from the app's URL map and the models attached to its views.

Every route of every blueprint declares what it takes and answers with
:func:`sdrest.api.schemas.api_doc` (see there for how to register a route). This module walks
the URL map, turns each view's :class:`~sdrest.api.schemas.Operation` into an OpenAPI operation
and the pydantic models into ``components.schemas`` (request models in validation mode,
response models in serialization mode). A route's summary is its view's docstring (first
line; the rest is its description). Added to every operation: ``401``, ``403`` and ``500``
(the access checks run before every view), and ``security`` when its access rule
(:mod:`sdrest.auth.rules`) needs credentials.

``tests/api/test_openapi.py`` fails for a route without a spec, and
``tests/api/test_openapi_responses.py`` validates real answers against this document.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, Literal

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sdrest import __version__
from sdrest.api.schemas.operation import Content, Operation, ResponseSpec, operation_of
from sdrest.auth.rules import PUBLIC, RULES

#: Endpoints that are not part of the HTTP API (the browser UI's pages and files).
NOT_API = frozenset({"static", "ui.home", "ui.ui"})

_REF = "#/components/schemas/{model}"
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT or sdrest API key",
        "description": "An access token from POST /api/v1/auth/login, or an API key.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "access_token_cookie",
        "description": "Browser sessions (login with cookie=true); writes need X-CSRF-TOKEN.",
    },
}
Mode = Literal["validation", "serialization"]
#: Errors any route may answer, whatever it declares: the access checks run before every view
#: (a public route too answers 401 to a bad token and 403 to a refused Host or Origin).
_EVERY_ROUTE = {
    401: "credentials missing, invalid, expired or revoked",
    403: "not allowed: the role, the Host or the Origin is refused",
    500: "internal error (logged; no details are sent)",
}


def openapi_path(rule: str) -> str:
    """``/api/v1/jobs/<job_id>/images/<int:index>`` -> ``/api/v1/jobs/{job_id}/images/{index}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def documented_routes(app: Flask) -> list[tuple[str, str, str, Operation | None]]:
    """(path, method, endpoint, operation or None) of every API route, in URL-map order."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_API:
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.rule, method, rule.endpoint, operation_of(view, method)))
    return routes


def served_document(app: Flask) -> dict[str, Any]:
    """The document of ``app``, built on first use: routes do not change once the app serves."""
    document = app.extensions.get("sdrest.openapi")
    if document is None:
        document = app.extensions["sdrest.openapi"] = openapi_document(app)
    return document


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` that declares its models."""
    routes = [r for r in documented_routes(app) if r[3] is not None]
    models: dict[tuple[type[BaseModel], Mode], None] = {}
    for _, _, _, operation in routes:
        assert operation is not None
        for model, mode in _models_of(operation):
            models[(model, mode)] = None
    refs, definitions = models_json_schema(list(models), ref_template=_REF) if models else ({}, {})

    def schema_of(model: type[BaseModel] | tuple[type[BaseModel], ...] | dict[str, Any], mode: Mode) -> dict[str, Any]:
        if isinstance(model, tuple):
            return {"anyOf": [dict(refs[(m, mode)]) for m in model]}
        return model if isinstance(model, dict) else dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for rule, method, endpoint, operation in routes:
        assert operation is not None
        path = openapi_path(rule)
        view = app.view_functions[endpoint]
        doc = [line.strip() for line in (view.__doc__ or endpoint).strip().splitlines()]
        operation_id = endpoint.replace(".", "_") + ("" if method == "GET" else f"_{method.lower()}")
        if operation_id in operation_ids:  # one view behind two paths
            operation_id += "_" + re.sub(r"\W+", "_", path.strip("/"))
        operation_ids.add(operation_id)
        entry: dict[str, Any] = {
            "operationId": operation_id,
            "summary": doc[0],
            "tags": list(operation.tags or (endpoint.split(".")[0],)),
        }
        description = " ".join(line for line in doc[1:] if line).strip()
        if description:
            entry["description"] = description
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{([a-z_]+)}", path)
        ]
        if operation.query is not None:
            parameters += _query_parameters(operation.query)
        if parameters:
            entry["parameters"] = parameters
        if operation.request is not None:
            schema = schema_of(operation.request, "validation")
            media = ("application/json", *(_FORMS if operation.form else ()))
            entry["requestBody"] = {
                "required": operation.request_required,
                "content": {m: {"schema": schema} for m in media},
            }
        responses: dict[str, Any] = {}
        for status, spec in operation.responses.items():
            responses[str(status)] = _response(status, spec, operation, schema_of)
        if RULES.get(endpoint, PUBLIC) != PUBLIC:
            entry["security"] = [{"bearer": []}, {"apiKey": []}, {"cookie": []}, {}]
        for status in sorted(set(operation.errors) | set(_EVERY_ROUTE)):
            responses.setdefault(
                str(status),
                {
                    "description": operation.descriptions.get(status)
                    or _EVERY_ROUTE.get(status)
                    or HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": schema_of(operation.error_model, "serialization")}},
                },
            )
        entry["responses"] = dict(sorted(responses.items()))
        paths.setdefault(path, {})[method.lower()] = entry
    return _short_names(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "sdrest",
                "version": __version__,
                "description": "Self-hosted Stable Diffusion server around stable-diffusion.cpp.",
            },
            "paths": dict(sorted(paths.items())),
            "components": {"schemas": definitions.get("$defs", {}), "securitySchemes": _SECURITY_SCHEMES},
        }
    )


def _short_names(document: dict[str, Any]) -> dict[str, Any]:
    """Components whose class names clash (two APIs' ``Txt2ImgRequest``) are named by pydantic
    after their whole module path; ``<module>.<Class>`` is unique too, and readable."""
    schemas = document["components"]["schemas"]
    renamed = {name: ".".join(name.split("__")[-2:]) for name in schemas if "__" in name}
    if not renamed:
        return document
    document["components"]["schemas"] = {renamed.get(n, n): s for n, s in schemas.items()}
    prefix = _REF.split("{", 1)[0]

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in renamed:
                node = {**node, "$ref": prefix + renamed[ref[len(prefix) :]]}
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return fix(document)


def _models_of(operation: Operation) -> list[tuple[type[BaseModel], Mode]]:
    found: list[tuple[type[BaseModel], Mode]] = []
    if isinstance(operation.request, type):
        found.append((operation.request, "validation"))
    for spec in operation.responses.values():
        schema = spec.schema if isinstance(spec, Content) else spec
        for model in schema if isinstance(schema, tuple) else (schema,):
            if isinstance(model, type):
                found.append((model, "serialization"))
    found.append((operation.error_model, "serialization"))
    return found


def _response(status: int, spec: ResponseSpec, operation: Operation, schema_of: Any) -> dict[str, Any]:
    description = operation.descriptions.get(status) or (
        spec.description if isinstance(spec, Content) and spec.description else HTTPStatus(status).phrase
    )
    response: dict[str, Any] = {"description": description}
    if spec is None:
        return response
    if isinstance(spec, Content):
        body = {"schema": schema_of(spec.schema, "serialization")} if spec.schema is not None else {}
        response["content"] = {media: dict(body) for media in spec.media_types}
    else:
        response["content"] = {"application/json": {"schema": schema_of(spec, "serialization")}}
    return response


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        if prop.get("description"):
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters
