"""create_app / close_app: what an app without a worker leaves alone, and what closing frees."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sdrest.app import close_app, create_app
from sdrest.jobs import JobStatus, SqliteJobStore
from sdrest.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")


def test_an_app_without_a_worker_leaves_the_store_as_it_found_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path).resolved()
    with SqliteJobStore(settings.database_path) as store:
        job = store.create("txt2img", {"prompt": "x"})
        assert store.claim_next().id == job.id  # running when the "server" went away
        last_event = store.last_event_id()
    close_app(create_app(settings, start_worker=False))
    with SqliteJobStore(settings.database_path) as store:
        assert store.get(job.id).status is JobStatus.RUNNING  # not requeued or failed
        assert store.last_event_id() == last_event
    # A server that runs jobs does recover it (here: fails it, as told).
    app = create_app(dataclasses.replace(settings, requeue_interrupted=False), start_worker=True)
    try:
        assert app.extensions["sdrest"].store.get(job.id).status is JobStatus.FAILED
    finally:
        close_app(app)


def test_close_app_closes_everything_through_one_services_object(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), start_worker=False)
    svc = app.extensions["sdrest"]
    close_app(app)
    assert svc.store.closed and svc.bus.subscriber_count == 0
    # The data folder's lock is free again: a second app can open it at once.
    close_app(create_app(_settings(tmp_path), start_worker=False))
