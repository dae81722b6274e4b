"""POST /api/v1/generate answers with the finished job by default (the spec's examples read
``images[0].data`` from the answer); ``"wait": false``, ``?wait=false`` and
``Prefer: respond-async`` queue it instead. Waiting requests stay bounded."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image

from server_helpers import FAST, Server, sd1_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    # One long-request slot: an open event stream fills it (the bound under test).
    yield from sd1_server(models, tmp_path_factory, "wait", "--max-event-streams", "1")


def test_generate_answers_with_the_finished_job_and_its_image_data(server: Server) -> None:
    response = server.post("/api/v1/generate", json={**FAST, "seed": 41})
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "completed"
    assert response.headers["Location"] == f"/api/v1/generate/{job['job_id']}"
    image = Image.open(io.BytesIO(base64.b64decode(job["images"][0]["data"])))
    assert image.size == (64, 64) and image.format == "PNG"


@pytest.mark.parametrize("how", ["body", "query", "prefer"])
def test_asking_for_async_queues_the_job_with_202_and_location(server: Server, how: str) -> None:
    body = {**FAST, "seed": 42, "steps": 30}
    kwargs: dict = {}
    if how == "body":
        body["wait"] = False
    elif how == "query":
        kwargs["params"] = {"wait": "false"}
    else:
        kwargs["headers"] = {"Prefer": "handling=lenient, respond-async"}
    response = server.post("/api/v1/generate", json=body, **kwargs)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running") and all("data" not in image for image in job["images"])
    assert response.headers["Location"] == f"/api/v1/generate/{job['job_id']}"
    assert (response.headers.get("Preference-Applied") == "respond-async") == (how == "prefer")
    server.delete(f"/api/v1/generate/{job['job_id']}")
    assert server.wait_job(job["job_id"])["status"] == "cancelled"


def test_an_explicit_wait_beats_prefer_respond_async(server: Server) -> None:
    response = server.post(
        "/api/v1/generate", json={**FAST, "seed": 43, "wait": True}, headers={"Prefer": "respond-async"}
    )
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert "Preference-Applied" not in response.headers


def test_mode_routes_still_queue_by_default(server: Server) -> None:
    response = server.post("/api/v1/generate/text2img", json={**FAST, "seed": 44, "steps": 30})
    assert response.status_code == 202
    server.delete(f"/api/v1/generate/{response.json()['job_id']}")


def test_no_free_waiting_slot_is_a_429_that_queues_nothing(server: Server) -> None:
    before = server.get("/api/v1/queue", params={"limit": 1}).json()["total"]
    with requests.get(server.url("/api/v1/events"), stream=True, timeout=60) as stream:
        assert stream.status_code == 200  # holds the only long-request slot
        refused = server.post("/api/v1/generate", json={**FAST, "seed": 45})
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "too_many_waiting" and "nothing was queued" in error["message"]
        assert refused.headers["Retry-After"] == "5"
        assert server.get("/api/v1/queue", params={"limit": 1}).json()["total"] == before
        queued = server.post("/api/v1/generate", json={**FAST, "seed": 46, "wait": False})
        assert queued.status_code == 202  # asking not to wait needs no slot
    assert server.wait_job(queued.json()["job_id"])["status"] == "completed"


def test_a_bad_wait_value_names_the_field(server: Server) -> None:
    body = server.post("/api/v1/generate", json={**FAST, "wait": "soon"})
    assert body.status_code == 422 and body.json()["error"]["field"] == "wait"
    query = server.post("/api/v1/generate", json=FAST, params={"wait": "soon"})
    assert query.status_code == 400 and query.json()["error"]["field"] == "wait"
