"""No user can take the server from the others: per-user caps on queued jobs and open streams,
positive priorities for admins only, and users taking turns in the queue."""

from __future__ import annotations

import pytest

from server_helpers import FAST, Server, add_users, bearer_headers, link_models

pytestmark = pytest.mark.slow

USERS = {"alice": ("alice-pw-1", "user"), "bob": ("bob-pw-1", "user"), "boss": ("boss-pw-1", "admin")}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("fairness")
    server = Server(
        root,
        link_models(models, root / "models"),
        "--model",
        "sd1",
        "--auth",
        "jwt",
        "--max-queued-per-user",
        "3",
        "--max-streams-per-user",
        "2",
    )
    add_users(server, USERS)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth(server: Server) -> dict[str, dict[str, str]]:
    return bearer_headers(server, USERS)


def _post(server: Server, headers: dict[str, str], **fields: object):
    return server.post("/api/v1/generate", json={**FAST, "wait": False, **fields}, headers=headers)


def test_queue_caps_turns_and_priorities(server, auth) -> None:
    blocker = _post(server, auth["boss"], steps=60, seed=1).json()  # keeps the worker busy
    jobs = []
    try:
        alice = [_post(server, auth["alice"], seed=10 + i) for i in range(4)]
        assert [r.status_code for r in alice[:3]] == [202] * 3
        assert alice[3].status_code == 429 and alice[3].json()["error"]["code"] == "too_many_queued"
        jobs += [r.json()["job_id"] for r in alice[:3]]
        bob = _post(server, auth["bob"], seed=20)  # alice's full queue is not bob's problem
        assert bob.status_code == 202
        jobs.append(bob.json()["job_id"])
        # bob waits behind one of alice's jobs, not behind all three
        positions = {
            job_id: server.get(f"/api/v1/generate/{job_id}", headers=auth["boss"]).json()["queue_position"]
            for job_id in jobs
        }
        assert positions[bob.json()["job_id"]] <= positions[jobs[1]]
        pushy = _post(server, auth["bob"], seed=21, priority=5)
        assert pushy.status_code == 403 and pushy.json()["error"]["field"] == "priority"
        urgent = _post(server, auth["boss"], seed=22, priority=5)
        assert urgent.status_code == 202
        jobs.append(urgent.json()["job_id"])
    finally:
        for job_id in [blocker["job_id"], *jobs]:
            server.delete(f"/api/v1/generate/{job_id}", headers=auth["boss"])


def test_one_user_cannot_hold_every_stream(server, auth) -> None:
    streams = [server.get("/api/v1/events", headers=auth["alice"], stream=True, timeout=30) for _ in range(3)]
    try:
        assert [s.status_code for s in streams] == [200, 200, 429]
        other = server.get("/api/v1/events", headers=auth["bob"], stream=True, timeout=30)
        assert other.status_code == 200
        other.close()
    finally:
        for stream in streams:
            stream.close()


def test_only_admins_change_the_shared_model_with_request_options(server, auth) -> None:
    refused = _post(server, auth["alice"], taesd="taesd")
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "taesd"
    same_model = _post(server, auth["alice"], model="sd1", seed=5)  # the current model is fine
    admin = _post(server, auth["boss"], taesd="taesd", seed=6)
    try:
        assert same_model.status_code == 202 and admin.status_code == 202
    finally:
        for response in (same_model, admin):
            if response.status_code == 202:
                server.delete(f"/api/v1/generate/{response.json()['job_id']}", headers=auth["boss"])
