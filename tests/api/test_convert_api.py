"""POST /api/v1/models/convert: an admin job that quantises a model with the library's converter,
writing only inside the source's model folder; the result loads."""

from __future__ import annotations

import pytest

from openapi_helpers import SchemaChecker
from sdrest.modelfiles import metadata
from server_helpers import Server, bearer_headers, users_server

pytestmark = pytest.mark.slow

USERS = {"boss": ("boss-pw-1", "admin"), "alice": ("alice-pw-1", "user")}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    yield from users_server(models, tmp_path_factory, "convert", USERS)


@pytest.fixture(scope="module")
def headers(server: Server) -> dict[str, dict[str, str]]:
    return bearer_headers(server, USERS)


def _files(server: Server) -> set[str]:
    return {str(p.relative_to(server.root)) for p in server.root.rglob("*") if p.is_file() and "data" not in p.parts}


def test_admin_converts_the_checkpoint_to_q8_0_and_loads_it(server: Server, headers) -> None:
    rules = r"^first_stage_model\.=f16"
    checker = SchemaChecker(server.get("/api/v1/openapi.json").json())
    response = checker.check(
        server.post(
            "/api/v1/models/convert",
            headers=headers["boss"],
            json={"model": "sd1", "weight_type": "q8_0", "tensor_type_rules": rules, "wait": True},
        ),
        "/api/v1/models/convert",
        "post",
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "completed" and job["mode"] == "convert", job["error"]
    assert job["parameters"]["output"] == "sd1.q8_0.gguf" and job["parameters"]["weight_type"] == "q8_0"
    assert str(server.root) not in response.text  # no server path in the answer
    output = server.models_dir / "checkpoints" / "sd1.q8_0.gguf"
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    summary = metadata(output, tensors=True)
    types = {t["name"]: t["dtype"] for t in summary["tensor_list"]}
    assert summary["format"] == "gguf" and summary["dtypes"]["Q8_0"] > 100
    assert {dtype for name, dtype in types.items() if name.startswith("first_stage_model.")} <= {"F16", "F32"}
    loaded = server.post("/api/v1/models/load", headers=headers["boss"], json={"model": "sd1.q8_0", "wait": True})
    assert loaded.status_code == 200 and loaded.json()["status"] == "completed", loaded.text
    assert server.get("/api/v1/status", headers=headers["boss"]).json()["loaded_model"] == "sd1.q8_0"
    again = server.post("/api/v1/models/convert", headers=headers["boss"], json={"model": "sd1"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "output"


def test_users_may_not_convert(server: Server, headers) -> None:
    before = _files(server)
    response = server.post("/api/v1/models/convert", headers=headers["alice"], json={"model": "sd1", "output": "mine"})
    assert response.status_code == 403
    assert _files(server) == before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"output": "../escaped"}, 422, "output"),
        ({"output": "/tmp/escaped"}, 422, "output"),
        ({"output": "sub/../../escaped"}, 422, "output"),
        ({"output": ".hidden"}, 422, "output"),
        ({"output": "..gguf"}, 422, "output"),
        ({"model": "../../../etc/passwd"}, 400, "model"),
        ({"model": "/etc/passwd"}, 400, "model"),
        ({"model": "missing"}, 404, "model"),
        ({"type": "presets"}, 422, "type"),
        ({"weight_type": "q9_9"}, 422, "weight_type"),
        ({"tensor_type_rules": "not rules"}, 422, "tensor_type_rules"),
        ({"vae": "../vae"}, 400, "vae"),
        ({"vae": "missing"}, 404, "vae"),
        ({"overwrite": True}, 400, "overwrite"),
    ],
)
def test_bad_conversions_name_the_field_and_write_nothing(server: Server, headers, body, status, field) -> None:
    before = _files(server)
    response = server.post(
        "/api/v1/models/convert", headers=headers["boss"], json={"model": "sd1", "output": "fine", **body}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    assert _files(server) == before
