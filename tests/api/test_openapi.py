"""The OpenAPI document covers every route, and request bodies come from the field table."""

from __future__ import annotations

import re

from sdrest.api.fields import GENERATION_FIELDS
from sdrest.api.openapi import openapi_document
from sdrest.app import close_app, create_app
from sdrest.settings import Settings


def _app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), start_worker=False)


def test_every_api_route_and_method_is_documented(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        document = openapi_document(app)
        assert document["openapi"] == "3.1.0"
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/api/"):
                continue
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                operation = document["paths"][path][method.lower()]
                assert operation["summary"] and operation["responses"]
        body = document["paths"]["/api/v1/generate"]["post"]["requestBody"]["content"]["application/json"]
        properties = body["schema"]["properties"]
        assert set(properties) == {f.name for f in GENERATION_FIELDS}
        assert properties["width"]["multipleOf"] == 8 and properties["steps"]["minimum"] == 1
        assert "sampler_name" in properties["sampler"]["description"]
        assert "_test_crash" not in properties
    finally:
        close_app(app)


def test_served_document(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        response = app.test_client().get("/api/v1/openapi.json")
        assert response.status_code == 200
        assert "/api/v1/generate/{job_id}/events" in response.get_json()["paths"]
    finally:
        close_app(app)
