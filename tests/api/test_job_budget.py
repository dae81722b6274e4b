"""One compute budget per job (--max-job-cost, megapixel-steps) on every API family, refused
with a 422 naming the fields before anything is decoded or queued."""

from __future__ import annotations

import base64

import openai
import pytest

from sdrest.api.jobparams import max_job_cost
from sdrest.settings import Settings
from server_helpers import Server, sd1_server

pytestmark = pytest.mark.slow

#: The review's requests: each passed validation and would have run for days on a CPU.
HUGE = {"prompt": "x", "width": 4096, "height": 4096, "batch_count": 16, "steps": 150}
#: Not an image at all: if it were decoded first, the answer would be invalid_image.
NOT_AN_IMAGE = base64.b64encode(b"not an image").decode()


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    yield from sd1_server(models, tmp_path_factory, "budget")


def _queued(server: Server) -> int:
    return server.get("/api/v1/queue", params={"limit": 1}).json()["total"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (HUGE, "batch_count"),
        ({"prompt": "x", "width": 1024, "height": 1024, "hires": {"width": 8192, "height": 8192}}, "hires"),
        ({"prompt": "x", "width": 2048, "height": 2048, "steps": 1, "sigmas": [1.0] * 31}, "sigmas"),
        ({**HUGE, "init_image": NOT_AN_IMAGE}, "batch_count"),  # the budget comes before the decode
    ],
)
def test_a_job_over_the_budget_is_refused_naming_its_fields(server: Server, body: dict, field: str) -> None:
    before = _queued(server)
    response = server.post("/api/v1/generate", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "job_too_large" and error["field"] == field
    assert "megapixel-steps" in error["message"] and "--max-job-cost" in error["message"]
    assert _queued(server) == before


def test_sigmas_run_no_more_steps_than_steps_may(server: Server) -> None:
    # steps: 1 with 31 sigmas ran 30 steps; a schedule is now bounded like steps (150).
    response = server.post("/api/v1/generate", json={"prompt": "x", "steps": 1, "sigmas": [1.0] * 152})
    assert response.status_code == 422 and response.json()["error"]["field"] == "sigmas"


def test_the_budget_holds_on_the_a1111_openai_and_video_routes(server: Server) -> None:
    before = _queued(server)
    a1111 = server.post(
        "/sdapi/v1/txt2img", json={"prompt": "x", "width": 4096, "height": 4096, "batch_size": 16, "steps": 150}
    )
    assert a1111.status_code == 422 and a1111.json()["error"] == "job_too_large", a1111.text
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="x", size="4096x4096", n=10, extra_body={"steps": 150})
    assert refused.value.code == "job_too_large" and "megapixel-steps" in str(refused.value)
    video = server.post(
        "/api/v1/generate/video", json={"prompt": "x", "width": 2048, "height": 2048, "video_frames": 257}
    )
    assert video.status_code == 422 and video.json()["error"]["field"] == "video_frames", video.text
    assert _queued(server) == before


def test_cheap_checks_come_before_decoding_the_images(server: Server) -> None:
    # A field that needs another one is refused without decoding 8 reference images first.
    response = server.post("/api/v1/generate", json={"prompt": "x", "pm_id_images": [NOT_AN_IMAGE] * 8})
    assert response.status_code == 422 and response.json()["error"]["field"] == "photo_maker"


def test_the_setting_wins_over_the_builds_default() -> None:
    assert max_job_cost(Settings(max_job_cost=12.5)) == 12.5
    assert max_job_cost(Settings(max_job_cost=0)) == 0  # no limit
