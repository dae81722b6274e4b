"""The OpenAPI document covers every route of every blueprint, from the models the routes declare."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import AliasChoices, Field

from sdrest.api.openapi import NOT_API, documented_routes, openapi_document, openapi_path
from sdrest.api.schemas import Content, RequestModel, ResponseModel, api_doc
from sdrest.app import close_app, create_app
from sdrest.settings import Settings


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
    @api_doc(
        request=_EchoRequest,
        responses={200: _EchoResponse},
        errors=(422,),
        error_model=_OtherError,
        form=False,
        tags=("extra",),
    )
    def echo() -> Any:
        """Echo the text.

        Several times if asked.
        """
        return jsonify({"echoed": []})

    @extra.get("/picture")
    @api_doc(responses={200: Content(("image/png",), {"type": "string", "contentMediaType": "image/png"}), 304: None})
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
        assert set(echo_op["responses"]) == {"200", "401", "403", "422", "500"}
        assert "security" not in echo_op  # no access rule: public
        error_ref = echo_op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        assert error_ref.endswith("/_OtherError")
        picture_op = document["paths"]["/extra/v1/picture"]["get"]
        assert picture_op["responses"]["200"]["content"]["image/png"]["schema"]["contentMediaType"] == "image/png"
        assert "content" not in picture_op["responses"]["304"]
    finally:
        close_app(app)


#: Every /api/v1 operation with the statuses it answers (401, 403 and 500: every route).
_SUBMIT = {200, 202, 400, 404, 409, 413, 415, 422, 429, 503}
EXPECTED: dict[tuple[str, str], set[int]] = {
    ("/api/v1/auth/login", "post"): {200, 400, 401, 413, 415, 422, 429},
    ("/api/v1/auth/refresh", "post"): {200, 400, 401},
    ("/api/v1/auth/profile", "get"): {200},
    ("/api/v1/auth/logout", "post"): {200, 400, 415, 422},
    ("/api/v1/auth/attempts", "get"): {200, 400},
    ("/api/v1/generate", "post"): _SUBMIT,
    ("/api/v1/generate/text2img", "post"): _SUBMIT,
    ("/api/v1/generate/img2img", "post"): _SUBMIT,
    ("/api/v1/generate/inpainting", "post"): _SUBMIT,
    ("/api/v1/upscale", "post"): _SUBMIT - {409},
    ("/api/v1/generate/video", "post"): _SUBMIT,
    ("/api/v1/models/convert", "post"): _SUBMIT,
    ("/api/v1/generate/{job_id}", "get"): {200, 400, 404},
    ("/api/v1/generate/{job_id}", "delete"): {200, 404, 409},
    ("/api/v1/generate/{job_id}/events", "get"): {200, 400, 404, 429},
    ("/api/v1/events", "get"): {200, 400, 429},
    ("/api/v1/jobs/{job_id}", "get"): {200, 400, 404},
    ("/api/v1/jobs/{job_id}", "delete"): {204, 404, 409},
    ("/api/v1/jobs/{job_id}/images/{index}", "get"): {200, 304, 400, 404},
    ("/api/v1/jobs/{job_id}/videos/{index}", "get"): {200, 304, 400, 404},
    ("/api/v1/queue", "get"): {200, 400},
    ("/api/v1/models", "get"): {200, 400},
    ("/api/v1/models/{model_id}", "get"): {200, 400, 404, 429},
    ("/api/v1/models/scan", "post"): {200},
    ("/api/v1/models/load", "post"): _SUBMIT - {409},
    ("/api/v1/models/unload", "post"): _SUBMIT - {404, 409},
    ("/api/v1/models/recipes", "get"): {200},
    ("/api/v1/models/downloads", "post"): {202, 400, 404, 409, 413, 415, 422, 503},
    ("/api/v1/models/downloads", "get"): {200, 400},
    ("/api/v1/models/downloads/{download_id}", "get"): {200, 404},
    ("/api/v1/models/downloads/{download_id}", "delete"): {200, 404},
    ("/api/v1/presets", "get"): {200},
    ("/api/v1/presets/{name}", "get"): {200, 400, 404},
    ("/api/v1/prompts", "get"): {200, 400},
    ("/api/v1/prompts/{kind}/{name}", "get"): {200, 400, 404},
    ("/api/v1/status", "get"): {200},
    ("/api/v1/system", "get"): {200},
    ("/api/v1/openapi.json", "get"): {200},
}
#: Request bodies: (path, method) -> the component every media type of the body refers to.
BODIES = {
    ("/api/v1/auth/login", "post"): "LoginRequest",
    ("/api/v1/auth/logout", "post"): "LogoutRequest",
    ("/api/v1/generate", "post"): "GenerationRequest",
    ("/api/v1/generate/text2img", "post"): "Txt2ImgRequest",
    ("/api/v1/generate/img2img", "post"): "Img2ImgRequest",
    ("/api/v1/generate/inpainting", "post"): "InpaintRequest",
    ("/api/v1/upscale", "post"): "UpscaleRequest",
    ("/api/v1/generate/video", "post"): "VideoRequest",
    ("/api/v1/models/convert", "post"): "ConvertRequest",
    ("/api/v1/models/load", "post"): "LoadRequest",
    ("/api/v1/models/unload", "post"): "UnloadRequest",
    ("/api/v1/models/downloads", "post"): "DownloadRequest",
}


def test_the_api_v1_operations_and_their_statuses(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        document = openapi_document(app)
    finally:
        close_app(app)
    found = {
        (path, method): {int(s) for s in operation["responses"]}
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
    }
    assert found == {key: statuses | {401, 403, 500} for key, statuses in EXPECTED.items()}
    for (path, method), component in BODIES.items():
        content = document["paths"][path][method]["requestBody"]["content"]
        refs = {media: body["schema"]["$ref"] for media, body in content.items()}
        assert set(refs) == {"application/json", "multipart/form-data", "application/x-www-form-urlencoded"}
        assert len(set(refs.values())) == 1
        assert _component(document, refs["application/json"])["title"] == component
    with_body = {key for key in found if "requestBody" in document["paths"][key[0]][key[1]]}
    assert with_body == set(BODIES)
    login = document["paths"]["/api/v1/auth/login"]["post"]
    assert (
        _component(document, login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])["title"]
        == "LoginView"
    )
    assert "security" not in login and "security" in document["paths"]["/api/v1/queue"]["get"]
    image = document["paths"]["/api/v1/jobs/{job_id}/images/{index}"]["get"]["responses"]["200"]["content"]
    assert set(image) == {"image/png", "image/jpeg", "image/webp"}
    video = document["paths"]["/api/v1/jobs/{job_id}/videos/{index}"]["get"]["responses"]["200"]["content"]
    assert set(video) == {"image/webp", "video/mp4"}
    events = document["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"text/event-stream"}
    metrics = document["paths"]["/metrics"]["get"]
    assert set(metrics["responses"]["200"]["content"]) == {"text/plain"} and "security" in metrics


def _component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix)
    return document["components"]["schemas"][ref[len(prefix) :]]


def test_request_schemas_carry_limits_and_aliases(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        document = openapi_document(app)
    finally:
        close_app(app)
    paths = document["paths"]
    schemas = {
        name: _component(document, paths[path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        for (path, method), name in BODIES.items()
    }
    schemas["HiresRequest"] = _component(document, schemas["Txt2ImgRequest"]["properties"]["hires"]["anyOf"][0]["$ref"])
    txt2img = schemas["Txt2ImgRequest"]
    assert txt2img["additionalProperties"] is False
    assert {"init_image", "mask_image", "strength", "denoising_strength"}.isdisjoint(txt2img["properties"])
    assert txt2img["properties"]["sampler_name"]["description"] == "Alias of `sampler`."
    assert txt2img["properties"]["batch_size"]["description"] == "Alias of `batch_count`."
    width = txt2img["properties"]["width"]["anyOf"][0]
    assert (width["minimum"], width["maximum"], width["multipleOf"]) == (64, 4096, 8)
    assert "capabilities.samplers" in txt2img["properties"]["sampler"]["anyOf"][0]["description"]
    assert "_test_crash" not in txt2img["properties"]
    img2img = schemas["Img2ImgRequest"]
    assert set(img2img["required"]) == {"init_image"}
    assert img2img["properties"]["denoising_strength"]["description"] == "Alias of `strength`."
    assert set(schemas["InpaintRequest"]["required"]) == {"init_image", "mask_image"}
    assert set(schemas["UpscaleRequest"]["required"]) == {"image", "upscaler"}
    assert set(schemas["LoginRequest"]["required"]) == {"username", "password"}
    hires = schemas["HiresRequest"]["properties"]["scale"]["anyOf"][0]
    assert (hires["minimum"], hires["maximum"]) == (1, 4)


def test_the_document_is_valid_openapi_3_1(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        document = openapi_document(app)
    finally:
        close_app(app)
    validate(document, cls=OpenAPIV31SpecValidator)  # raises on any violation, dangling $refs included


def test_served_document(tmp_path) -> None:
    app = _app(tmp_path)
    try:
        response = app.test_client().get("/api/v1/openapi.json")
        assert response.status_code == 200
        assert "/api/v1/generate/{job_id}/events" in response.get_json()["paths"]
    finally:
        close_app(app)
