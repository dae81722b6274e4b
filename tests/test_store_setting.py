"""``sdrest serve --store``: a real server on a real PostgreSQL runs a job end to end and replays
its events from the database; bad store URLs are refused by name, passwords never printed."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sdrest import cli
from sdrest.jobs import JobStatus
from sdrest.jobs.pgstore import PostgresJobStore
from server_helpers import Server, free_port, link_models, sse_events


@pytest.mark.slow
def test_serve_runs_a_job_on_a_postgresql_store_and_replays_its_events(models, tmp_path, postgres_url) -> None:
    server = Server(
        tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1", "--store", postgres_url
    ).start()
    try:
        job = server.submit(seed=1, wait=True)
        assert job["status"] == "completed"
        image = Image.open(io.BytesIO(server.get(job["images"][0]["url"]).content))
        assert image.size == (64, 64)

        with server.get("/api/v1/events", params={"last_event_id": 0}, stream=True, timeout=30) as response:
            replay = []
            for event in sse_events(response):
                replay.append(event)
                if event["event"] == "completed":
                    break
        mine = [e for e in replay if e["data"].get("job_id") == job["job_id"]]
        assert [e["event"] for e in mine] == ["queued", "started", "completed"]
        started = mine[1]["id"]
        with server.get("/api/v1/events", headers={"Last-Event-ID": started}, stream=True, timeout=30) as response:
            after = next(iter(sse_events(response)))
        assert (after["event"], after["id"]) == ("completed", mine[2]["id"])
    finally:
        server.stop()

    # The job and its events are in PostgreSQL; the data folder has no job database.
    assert not (server.data_dir / "jobs.sqlite3").exists()
    with PostgresJobStore(postgres_url) as store:
        assert store.get(job["job_id"]).status is JobStatus.COMPLETED
        assert [e.id for e in store.events_after(0, job_id=job["job_id"])] == [int(e["id"]) for e in mine]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://sdrest:pw-123@db/jobs", "store: 'mysql://sdrest:***@db/jobs' is not sqlite:///PATH or postgresql://"),
        ("sqlite:///", "store: sqlite:/// needs a file path"),
        ("postgresql://db/jobs?bogus=1", "store: 'postgresql://db/jobs?bogus=1' is not a valid PostgreSQL URL"),
    ],
)
def test_bad_store_urls_are_refused_by_name(url, message, capsys) -> None:
    assert cli.main(["serve", "--store", url, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert message in err and "pw-123" not in err


def test_print_config_hides_the_store_password(capsys) -> None:
    assert cli.main(["serve", "--store", "postgresql://sdrest:pw-123@db/jobs", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert '"store": "postgresql://sdrest:***@db/jobs"' in out and "pw-123" not in out


def test_an_unreachable_store_stops_serve_with_a_clear_error(tmp_path, capsys) -> None:
    url = f"postgresql://sdrest:pw-123@127.0.0.1:{free_port()}/jobs"  # nothing listens there
    assert (
        cli.main(
            ["serve", "--store", url, "--data-dir", str(tmp_path / "data"), "--models-dir", str(tmp_path / "models")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "sdrest serve: cannot connect to the job store at postgresql://sdrest:***@127.0.0.1" in err
    assert "pw-123" not in err
