"""The OpenAPI document covers every route of every blueprint, from the models the routes declare."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from sdrest.api.openapi import NOT_API, documented_routes, openapi_document, openapi_path
from sdrest.api.schemas import Content, RequestModel, ResponseModel, api_doc
from sdrest.app import close_app, create_app
from sdrest.settings import Settings
from pydantic import AliasChoices, Field


def _app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), start_worker=False)


def test_every_route_and_method_is_documented(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        document = openapi_document(app)
        assert document["openapi"] == "3.1.0"
        routes = documented_routes(app)
        assert {endpoint for _, _, endpoint, _ in routes} == set(app.view_functions) - NOT_API
        for rule, method, endpoint, _ in routes:
            operation = document["paths"][openapi_path(rule)][method.lower()]
            assert operation["summary"], endpoint
            assert any(status.startswith("2") for status in operation["responses"]), endpoint
    finally:
        close_app(app)


class _EchoRequest(RequestModel):
    text: str = Field(max_length=10, description="What to echo.")
    times: int | None = Field(None, ge=1, validation_alias=AliasChoices("times", "n"))


class _EchoResponse(ResponseModel):
    echoed: list[str]


class _OtherError(ResponseModel):
    detail: str


def test_a_blueprint_registers_its_routes_models(tmp_path) -> None:
    extra = Blueprint("extra", __name__, url_prefix="/extra/v1")

    @extra.post("/echo")
    @api_doc(request=_EchoRequest, responses={200: _EchoResponse}, errors=(422,), error_model=_OtherError,
             form=False, tags=("extra",))
    def echo() -> Any:
        """Echo the text.

        Several times if asked.
        """
        return jsonify({"echoed": []})

    @extra.get("/picture")
    @api_doc(responses={200: Content(("image/png",), {"type": "string", "contentMediaType": "image/png"}),
                        304: None})
    def picture() -> Any:
        """A picture."""
        return ""

    app = _app(tmp_path)
    try:
        app.register_blueprint(extra)
        document = openapi_document(app)
        echo_op = document["paths"]["/extra/v1/echo"]["post"]
        assert echo_op["summary"] == "Echo the text." and echo_op["description"] == "Several times if asked."
        assert echo_op["tags"] == ["extra"]
        assert list(echo_op["requestBody"]["content"]) == ["application/json"]
        request_ref = echo_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        request_schema = document["components"]["schemas"][request_ref.rsplit("/", 1)[1]]
        assert request_schema["additionalProperties"] is False
        assert request_schema["properties"]["text"]["maxLength"] == 10
        assert request_schema["properties"]["n"]["description"] == "Alias of `times`."
        assert request_schema["properties"]["n"]["anyOf"][0]["minimum"] == 1
        assert request_schema["required"] == ["text"]
        assert set(echo_op["responses"]) == {"200", "422", "500"}  # no rule: public, so no 401/403
        error_ref = echo_op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        assert error_ref.endswith("/_OtherError")
        picture_op = document["paths"]["/extra/v1/picture"]["get"]
        assert picture_op["responses"]["200"]["content"]["image/png"]["schema"]["contentMediaType"] == "image/png"
        assert "content" not in picture_op["responses"]["304"]
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
