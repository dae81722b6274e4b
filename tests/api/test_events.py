"""Server-Sent Events through a real server: content, order, replay, many subscribers."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from server_helpers import FAST, Server, link_models, sse_events

pytestmark = pytest.mark.slow

STREAMS = 64


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("events")
    server = Server(
        root, link_models(models, root / "models"), "--model", "sd1", "--max-event-streams", str(STREAMS)
    ).start()
    yield server
    server.stop()


def test_job_stream_reports_state_progress_preview_and_completion(server: Server) -> None:
    with server.held_worker():  # subscribed while the job is certainly still queued
        job = server.submit(steps=3, seed=5)
        response = server.get(f"/api/v1/generate/{job['job_id']}/events", stream=True, timeout=120)
        assert response.headers["Content-Type"].startswith("text/event-stream")
    events = list(sse_events(response))
    types = [e["event"] for e in events]
    assert types[0] == "state" and events[0]["data"]["status"] == "queued"
    assert types[-1] == "completed"
    assert "progress" in types and "preview" in types
    assert types.index("started") < types.index("progress")
    steps = [e["data"]["step"] for e in events if e["event"] == "progress" and e["data"].get("step")]
    assert steps == sorted(steps) and steps[-1] == 3
    preview = next(e for e in events if e["event"] == "preview")
    assert preview["data"]["image"].startswith("data:image/png;base64,")
    completed = events[-1]
    assert int(completed["id"]) > 0 and completed["data"]["job"]["status"] == "completed"
    assert all("id" not in e for e in events if e["event"] in ("progress", "preview"))


def test_global_stream_announces_queue_changes(server: Server) -> None:
    with server.get("/api/v1/events", stream=True, timeout=60) as response:
        job = server.submit(seed=6)
        queue_events = []
        for event in sse_events(response):
            if event["event"] == "queue":
                queue_events.append(event["data"])
                assert "id" not in event
            if event["event"] == "completed" and event["data"]["job_id"] == job["job_id"]:
                break
    assert any(e["running"] == job["job_id"] for e in queue_events)
    assert all(isinstance(e["queued"], int) for e in queue_events)


def test_reconnect_with_last_event_id_replays_what_was_missed(server: Server) -> None:
    first = server.submit(seed=1, wait=True)
    with server.get("/api/v1/events", params={"last_event_id": 0}, stream=True, timeout=30) as response:
        replay = []
        for event in sse_events(response):
            replay.append(event)
            if event["event"] == "completed" and event["data"]["job_id"] == first["job_id"]:
                break
    mine = [e for e in replay if e["data"].get("job_id") == first["job_id"]]
    assert [e["event"] for e in mine] == ["queued", "started", "completed"]
    ids = [int(e["id"]) for e in replay]
    assert ids == sorted(ids)
    # Reconnect after the "started" event: only what came later is replayed.
    after = mine[1]["id"]
    with server.get("/api/v1/events", headers={"Last-Event-ID": after}, stream=True, timeout=30) as response:
        first_event = next(iter(sse_events(response)))
    assert int(first_event["id"]) > int(after)
    second = server.submit(seed=2, wait=True)
    assert second["status"] == "completed"


def test_finished_job_stream_ends_after_its_state(server: Server) -> None:
    job = server.submit(seed=3, wait=True)
    events = list(sse_events(server.get(f"/api/v1/generate/{job['job_id']}/events", stream=True, timeout=30)))
    assert [e["event"] for e in events] == ["state"]
    assert events[0]["data"]["status"] == "completed"


def test_many_subscribers_do_not_starve_ordinary_requests(server: Server) -> None:
    sockets = []
    try:
        for _ in range(STREAMS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            sockets.append(sock)
        for sock in sockets:  # every stream really is open
            assert sock.recv(200).startswith(b"HTTP/1.1 200")
        for _ in range(20):
            assert requests.get(server.url("/api/v1/status"), timeout=10).status_code == 200
        job = server.submit(seed=4, wait=False)
        assert server.wait_job(job["job_id"])["status"] == "completed"
        # One stream more than the limit is refused, not queued forever.
        refused = requests.get(server.url("/api/v1/events"), timeout=10, stream=True)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_streams"
    finally:
        for sock in sockets:
            sock.close()
    # Closed streams give their slots back (detected at the next keep-alive or event).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        server.submit(seed=5, wait=False)
        response = requests.get(server.url("/api/v1/events"), timeout=10, stream=True)
        response.close()
        if response.status_code == 200:
            break
        time.sleep(1)
    assert response.status_code == 200


def test_bad_last_event_id_and_unknown_job(server: Server) -> None:
    bad = server.get("/api/v1/events", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "Last-Event-ID"
    missing = server.get("/api/v1/generate/nope/events")
    assert missing.status_code == 404


def test_concurrent_listeners_all_see_the_completion(server: Server) -> None:
    seen: list[dict] = []
    subscribed = threading.Semaphore(0)

    def listen(job_id: str) -> None:
        with server.get(f"/api/v1/generate/{job_id}/events", stream=True, timeout=120) as response:
            subscribed.release()  # the server subscribes before it sends the headers
            seen.append(list(sse_events(response))[-1])

    with server.held_worker():  # every listener subscribes before the job can run
        job = server.submit(**{**FAST, "steps": 2, "seed": 9})
        threads = [threading.Thread(target=listen, args=(job["job_id"],)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for _ in threads:
            assert subscribed.acquire(timeout=60)
    for thread in threads:
        thread.join(180)
    assert len(seen) == 8
    assert all(
        event["event"] == "completed"
        and event["data"]["job"]["status"] == "completed"
        and event["data"]["job_id"] == job["job_id"]
        for event in seen
    )
