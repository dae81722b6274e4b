"""GET /metrics: Prometheus text that the official client's parser reads, with figures that
follow what the server did, for any authenticated caller (a guest key is enough)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sdrest.app import close_app, create_app
from sdrest.settings import Settings
from server_helpers import Server, bearer_headers, users_server

USERS = {"ops": ("ops-password-1", "guest"), "ann": ("ann-password-1", "user")}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    yield from users_server(models, tmp_path_factory, "metrics", USERS, "--model", "sd1")


def test_finished_jobs_show_in_the_histograms_and_counts(server: Server) -> None:
    headers = bearer_headers(server, USERS)
    before = samples(server.get("/metrics", headers=headers["ops"]).text)
    for seed in (1, 2):
        response = server.post(
            "/api/v1/generate",
            headers=headers["ann"],
            json={"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 1, "seed": seed},
        )
        assert response.status_code == 200 and response.json()["status"] == "completed", response.text

    response = server.get("/metrics", headers=headers["ops"])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = samples(response.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0.0)

    assert grew("sdrest_job_duration_seconds_count", mode="txt2img", model="sd1", status="completed") == 2
    assert grew("sdrest_job_queue_wait_seconds_count", mode="txt2img") == 2
    assert grew("sdrest_job_stage_duration_seconds_count", stage="sampling", mode="txt2img", model="sd1") == 2
    # A run's duration covers its sampling: the sums cannot disagree that way.
    assert value(after, "sdrest_job_duration_seconds_sum", mode="txt2img", model="sd1", status="completed") >= value(
        after, "sdrest_job_stage_duration_seconds_sum", stage="sampling", mode="txt2img", model="sd1"
    )
    assert grew("sdrest_jobs", status="completed") == 2
    assert grew("sdrest_jobs_finished_total", status="completed") == 2
    assert grew("sdrest_images_generated_total") == 2
    assert value(after, "sdrest_worker_up") == 1
    assert value(after, "sdrest_resident_models") == 1
    # sd1 was loaded once, when the server started with --model sd1 or for the first job: never per job.
    loads = sum(v for (name, _), v in after.items() if name == "sdrest_model_load_duration_seconds_count")
    assert loads <= 1


def test_metrics_need_credentials_and_a_guest_needs_no_more(server: Server) -> None:
    headers = bearer_headers(server, USERS)
    refused = server.get("/metrics")
    assert refused.status_code == 401 and refused.json()["error"]["code"]
    assert server.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert server.get("/metrics", headers=headers["ops"]).status_code == 200  # "ops" is a guest


def test_queue_depth_is_counted_by_priority(tmp_path) -> None:
    # No worker: queued jobs stay queued, so the depth is exactly what was submitted.
    app = create_app(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), start_worker=False)
    try:
        store = app.extensions["sdrest"].store
        for priority in (0, 0, 0, 5, -1):
            store.create("txt2img", {"prompt": "x"}, priority=priority)
        cancelled = store.create("txt2img", {"prompt": "y"}, priority=5)
        store.cancel(cancelled.id)
        found = samples(app.test_client().get("/metrics").get_data(as_text=True))
        assert value(found, "sdrest_queue_depth", priority="0") == 3
        assert value(found, "sdrest_queue_depth", priority="5") == 1
        assert value(found, "sdrest_queue_depth", priority="-1") == 1
        assert value(found, "sdrest_jobs", status="queued") == 5
        assert value(found, "sdrest_jobs", status="cancelled") == 1
        assert value(found, "sdrest_worker_up") == 0
        # A job cancelled before it ran never ran: no duration is recorded for it.
        assert (
            "sdrest_job_duration_seconds_count",
            frozenset({"mode": "txt2img", "model": "default", "status": "cancelled"}.items()),
        ) not in found
    finally:
        close_app(app)
