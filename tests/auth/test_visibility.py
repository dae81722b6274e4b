"""What one user can learn about another's work: crash reports, the running job, image URLs;
and a body too large for the server is refused before authentication, not buffered."""

from __future__ import annotations

import time

import pytest
import requests

from server_helpers import CRASH_PREFIX, FAST, Server, add_users, bearer_headers, link_models, sse_events

pytestmark = pytest.mark.slow

USERS = {"alice": ("alice-pw-1", "user"), "bob": ("bob-pw-1", "user"), "boss": ("boss-pw-1", "admin")}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("visibility")
    server = Server(
        root,
        link_models(models, root / "models"),
        "--model",
        "sd1",
        "--auth",
        "optional",
        "--public-images",
        "--max-body-mb",
        "1",
    )
    add_users(server, USERS)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth(server: Server) -> dict[str, dict[str, str]]:
    return bearer_headers(server, USERS)


def _submit(server: Server, headers: dict[str, str], **fields: object) -> dict:
    response = server.post("/api/v1/generate", json={**FAST, "wait": False, **fields}, headers=headers)
    assert response.status_code in (200, 202), response.text
    return response.json()


def _wait(server: Server, headers: dict[str, str], job_id: str, until: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = server.get(f"/api/v1/generate/{job_id}", headers=headers).json()
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {until}")


def test_a_crash_report_holds_only_the_crashed_jobs_warnings_and_only_for_its_owner(server, auth) -> None:
    secret = "alice private seaside prompt"
    done = _submit(server, auth["alice"], prompt=secret)
    assert _wait(server, auth["alice"], done["job_id"], ("completed",))["status"] == "completed"
    assert secret in server.log_text()  # the library did print it (at debug level)

    crashed = _submit(server, auth["bob"], prompt=CRASH_PREFIX + "abort")
    job = _wait(server, auth["bob"], crashed["job_id"], ("failed",))
    log = job["error"]["log"]
    assert any("simulating abort" in line for line in log)
    assert not any(secret in line or "seaside" in line for line in log), log

    for viewer in ("alice", None):  # another user, a guest
        crash = server.get("/api/v1/status", headers=auth.get(viewer or "", {})).json()["worker"]["last_crash"]
        assert crash["details_hidden"] is True and "log" not in crash and "job_id" not in crash
    for viewer in ("bob", "boss"):  # the owner, an admin
        crash = server.get("/api/v1/status", headers=auth[viewer]).json()["worker"]["last_crash"]
        assert crash["job_id"] == crashed["job_id"] and crash["log"] == log


def test_another_users_running_job_shows_only_as_busy(server, auth) -> None:
    with server.get("/api/v1/events", headers=auth["bob"], stream=True, timeout=120) as stream:
        running = _submit(server, auth["alice"], steps=30, seed=9)
        _wait(server, auth["alice"], running["job_id"], ("running",))
        try:
            for viewer, visible in (("alice", True), ("boss", True), ("bob", False), (None, False)):
                headers = auth.get(viewer or "", {})
                status = server.get("/api/v1/status", headers=headers).json()
                queue = server.get("/api/v1/queue", headers=headers).json()
                expected = running["job_id"] if visible else None
                assert (status["running_job"], status["running_hidden"]) == (expected, not visible), viewer
                assert (queue["running"], queue["running_hidden"]) == (expected, not visible), viewer
            for event in sse_events(stream):
                if event["event"] == "queue" and event["data"].get("running_hidden"):
                    assert event["data"]["running"] is None and "running_owner" not in event["data"]
                    break
                assert running["job_id"] not in str(event["data"])
        finally:
            server.delete(f"/api/v1/generate/{running['job_id']}", headers=auth["alice"])


def test_public_images_open_with_their_token_not_with_the_job_id(server, auth) -> None:
    job = _submit(server, auth["alice"], seed=4)
    job = _wait(server, auth["alice"], job["job_id"], ("completed",))
    url = job["images"][0]["url"]
    assert "?token=" in url
    bare = url.split("?")[0]
    assert requests.get(server.url(url), timeout=30).status_code == 200  # anyone with the URL
    assert requests.get(server.url(bare), timeout=30).status_code == 404  # not with the id alone
    assert requests.get(server.url(bare + "?token=" + "0" * 32), timeout=30).status_code == 404
    assert requests.get(server.url(url + "&size=32"), timeout=30).status_code == 200
    assert server.get(bare, headers=auth["alice"]).status_code == 200  # the owner needs no token
    assert server.get(bare, headers=auth["bob"]).status_code == 404


def test_a_body_over_the_limit_is_refused_before_authentication(server) -> None:
    response = requests.post(
        server.url("/api/v1/generate"), data=b"x" * (4 << 20), timeout=60, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413  # Waitress stops reading; without the limit: buffered, then 401
    assert server.status()["status"] == "ok"
