"""Who may call the compatibility APIs: HTTP Basic (A1111's --api-auth) mapped onto sdrest users,
sdrest tokens and API keys, the same roles as the native routes, and each user's own jobs."""

from __future__ import annotations

import concurrent.futures
import json

import openai
import pytest
import requests

from compat_helpers import A1111_FAST, add_user, bearer_for, compat_models, sdrest_cli, wait_until
from server_helpers import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("compat-auth")
    server = Server(root, compat_models(models, root / "models"), "--model", "sd1", "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "alice", "alice-pass-1")
    add_user(server.data_dir, "bob", "bob-pass-1")
    add_user(server.data_dir, "carol", "carol-pass-1")
    add_user(server.data_dir, "root", "root-pass-1", role="admin")
    created = sdrest_cli(
        "keys", "create", "--name", "bot", "--role", "user", "--owner", "alice", "--data-dir", str(server.data_dir)
    )
    assert created.returncode == 0, created.stderr
    server.key = next(word for word in created.stdout.split() if word.startswith("sdr_"))
    yield server.start()
    server.stop()


def test_basic_auth_maps_onto_sdrest_users_and_roles(server: Server) -> None:
    assert server.get("/sdapi/v1/options").status_code == 401
    assert server.get("/sdapi/v1/options", auth=("alice", "alice-pass-1")).status_code == 200
    wrong = server.get("/sdapi/v1/options", auth=("alice", "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    # Least privilege: switching the model is for admins, as POST /api/v1/models/load.
    switch = {"sd_model_checkpoint": "sd1b.safetensors"}
    forbidden = server.post("/sdapi/v1/options", json=switch, auth=("alice", "alice-pass-1"))
    assert forbidden.status_code == 403 and forbidden.json()["field"] is None
    assert server.get("/sdapi/v1/cmd-flags", auth=("alice", "alice-pass-1")).status_code == 403
    # Nor through a per-call override (the model and its VAE are shared by everyone).
    current = server.get("/sdapi/v1/options", auth=("alice", "alice-pass-1")).json()["sd_model_checkpoint"]
    other = "sd1" if current.startswith("sd1b") else "sd1b"
    for override, field in (
        ({"sd_model_checkpoint": other}, "override_settings.sd_model_checkpoint"),
        ({"sd_vae": "vae"}, "override_settings.sd_vae"),
    ):
        refused = server.post(
            "/sdapi/v1/txt2img", json={**A1111_FAST, "override_settings": override}, auth=("alice", "alice-pass-1")
        )
        assert refused.status_code == 403 and refused.json()["field"] == field, refused.text
    assert server.post("/sdapi/v1/options", json=switch, auth=("root", "root-pass-1")).status_code == 200
    # Basic is an A1111 convention: the native API keeps to tokens and keys.
    assert server.get("/api/v1/status", auth=("alice", "alice-pass-1")).status_code == 401


def test_basic_failures_are_throttled_and_audited(models, tmp_path) -> None:
    server = Server(tmp_path, compat_models(models, tmp_path / "models"), "--auth", "jwt", "--auth-max-failures", "3")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "bob", "bob-pass-1")
    add_user(server.data_dir, "root", "root-pass-1", role="admin")
    root = bearer_for(server.start(wait_for_worker=False), "root", "root-pass-1")
    try:
        for _ in range(3):
            assert server.get("/sdapi/v1/options", auth=("bob", "nope")).status_code == 401
        locked = server.get("/sdapi/v1/options", auth=("bob", "bob-pass-1"))
        assert locked.status_code == 429 and "Retry-After" in locked.headers
        attempts = server.get("/api/v1/auth/attempts", params={"username": "bob"}, headers=root).json()
        assert [a["outcome"] for a in attempts["attempts"]] == ["throttled", "failure", "failure", "failure"]
    finally:
        server.stop()


def test_parallel_basic_guesses_are_counted_before_the_password_check(models, tmp_path) -> None:
    # The review: 40 parallel wrong Basic passwords were all evaluated (login stops at 5, then 429).
    server = Server(tmp_path, compat_models(models, tmp_path / "models"), "--auth", "jwt", "--auth-max-failures", "5")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "dave", "dave-pass-1")
    add_user(server.data_dir, "root", "root-pass-1", role="admin")
    root = bearer_for(server.start(wait_for_worker=False), "root", "root-pass-1")
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            guesses = list(
                pool.map(lambda i: server.get("/sdapi/v1/options", auth=("dave", f"guess-{i}")).status_code, range(40))
            )
        assert guesses.count(401) <= 5 and guesses.count(429) >= 35 and set(guesses) <= {401, 429}
        audited = server.get("/api/v1/auth/attempts", params={"username": "dave"}, headers=root).json()["attempts"]
        assert sum(a["outcome"] == "failure" for a in audited) == guesses.count(401) <= 5
        # A malformed header has no user to throttle: its audit rows are capped per client
        # (as bad bearer tokens are), not one row per request.
        for _ in range(60):
            junk = server.get("/sdapi/v1/options", headers={"Authorization": "Basic !!not-base64!!"})
            assert junk.status_code in (401, 429)
        rows = server.get("/api/v1/auth/attempts", params={"limit": 1000}, headers=root).json()["attempts"]
        assert 1 <= sum(a["reason"] == "malformed Basic credentials" for a in rows) <= 20
    finally:
        server.stop()


def test_one_users_streams_and_waits_leave_a_slot_for_another(models, tmp_path) -> None:
    # The review: with 3 slots, one user's three waits made another's txt2img and stream answer 429.
    server = Server(tmp_path, compat_models(models, tmp_path / "models"), "--model", "sd1", "--auth", "jwt",
                    "--max-event-streams", "3")  # fmt: skip
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "alice", "alice-pass-1")
    add_user(server.data_dir, "bob", "bob-pass-1")
    server.start()
    alice, bob = bearer_for(server, "alice", "alice-pass-1"), bearer_for(server, "bob", "bob-pass-1")
    streams = [server.get("/api/v1/events", headers=alice, stream=True, timeout=30) for _ in range(2)]
    try:
        assert [s.status_code for s in streams] == [200, 200]
        # A wait counts against the same per-user slots as a stream: alice has used hers.
        waiting = server.post("/sdapi/v1/txt2img", json=A1111_FAST, auth=("alice", "alice-pass-1"))
        assert waiting.status_code == 429 and waiting.json()["error"] == "too_many_waiting"
        third = server.get("/api/v1/events", headers=alice, stream=True, timeout=30)
        assert third.status_code == 429
        third.close()
        answer = server.post("/sdapi/v1/txt2img", json=A1111_FAST, auth=("bob", "bob-pass-1"))
        assert answer.status_code == 200 and len(answer.json()["images"]) == 1
        with server.get("/api/v1/events", headers=bob, stream=True, timeout=30) as own:
            assert own.status_code == 200
    finally:
        for stream in streams:
            stream.close()
        server.stop()


def test_tokens_and_api_keys_work_too_and_jobs_belong_to_their_caller(server: Server) -> None:
    alice = bearer_for(server, "alice", "alice-pass-1")
    before = server.get("/api/v1/queue", headers=alice).json()["total"]
    response = server.post("/sdapi/v1/txt2img", json=A1111_FAST, headers=alice)
    assert response.status_code == 200, response.text
    job_id = json.loads(response.json()["info"])["sdrest_job_id"]
    assert server.get(f"/api/v1/jobs/{job_id}", headers=alice).json()["status"] == "completed"
    client = openai.OpenAI(base_url=server.url("/v1"), api_key=server.key, max_retries=0, timeout=300)
    assert len(client.images.generate(prompt="x", size="64x64", extra_body={"steps": 1}).data) == 1
    # Both calls are alice's jobs (the key's owner is alice); carol sees neither.
    assert server.get("/api/v1/queue", headers=alice).json()["total"] == before + 2
    carol = bearer_for(server, "carol", "carol-pass-1")
    assert server.get(f"/api/v1/jobs/{job_id}", headers=carol).status_code == 404


def test_openai_errors_for_bad_credentials(server: Server) -> None:
    bad = openai.OpenAI(base_url=server.url("/v1"), api_key="sdr_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        bad.models.list()
    assert error.value.body["type"] == "authentication_error"
    anonymous = requests.get(server.url("/v1/models"), timeout=30)
    assert anonymous.status_code == 401 and set(anonymous.json()["error"]) == {"message", "type", "param", "code"}


def test_progress_and_interrupt_see_only_the_callers_jobs(server: Server) -> None:
    alice = bearer_for(server, "alice", "alice-pass-1")
    carol = bearer_for(server, "carol", "carol-pass-1")
    root = bearer_for(server, "root", "root-pass-1")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(server.post, "/sdapi/v1/txt2img", json={**A1111_FAST, "steps": 40}, headers=alice)
        wait_until(lambda: server.get("/sdapi/v1/progress", headers=alice).json()["state"]["sampling_step"] >= 1)
        assert server.get("/sdapi/v1/progress", headers=carol).json()["state"]["job_count"] == 0
        assert server.get("/sdapi/v1/progress", headers=root).json()["state"]["job_count"] == 1
        assert server.post("/sdapi/v1/interrupt", headers=carol).status_code == 200  # not carol's job: no effect
        assert server.get("/sdapi/v1/progress", headers=alice).json()["state"]["job_count"] == 1
        assert server.post("/sdapi/v1/interrupt", headers=alice).status_code == 200
        assert json.loads(call.result(timeout=120).json()["info"])["interrupted"] is True
