"""Authentication and authorisation through real servers: jwt users and API keys made with
the CLI, real Unix accounts and PAM services, guests, tokens gone bad, throttling, audit,
cookies with CSRF, and per-user isolation on every job and image route."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import requests

from server_helpers import FAST, Server, link_models, sse_events

pytestmark = pytest.mark.slow


def sdrest_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60)


def add_user(data_dir: Path, name: str, password: str, role: str = "user") -> None:
    result = sdrest_cli(
        "users", "add", name, "--password-stdin", "--role", role, "--data-dir", str(data_dir), stdin=password + "\n"
    )
    assert result.returncode == 0, result.stderr


def login(server: Server, name: str, password: str, **extra: object) -> requests.Response:
    return server.post("/api/v1/auth/login", json={"username": name, "password": password, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def models_dir(models, tmp_path_factory):
    return link_models(models, tmp_path_factory.mktemp("auth-models"))


@pytest.fixture(scope="module")
def jwt_server(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("jwt")
    server = Server(root, models_dir, "--model", "sd1", "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "alice", "alice-secret-1")
    add_user(server.data_dir, "bob", "bob-secret-1")
    add_user(server.data_dir, "root-admin", "admin-secret-1", role="admin")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(jwt_server: Server) -> dict[str, str]:
    return {
        name: login(jwt_server, name, password).json()["access_token"]
        for name, password in (("alice", "alice-secret-1"), ("bob", "bob-secret-1"), ("root-admin", "admin-secret-1"))
    }


def test_login_profile_refresh_logout_and_revocation_survives_restart(jwt_server: Server) -> None:
    response = login(jwt_server, "alice", "alice-secret-1")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["user"] == {"username": "alice", "role": "user", "method": "jwt"}
    access, refresh = body["access_token"], body["refresh_token"]
    profile = jwt_server.get("/api/v1/auth/profile", headers=bearer(access)).json()
    assert profile["username"] == "alice" and profile["role"] == "user"
    renewed = jwt_server.post("/api/v1/auth/refresh", headers=bearer(refresh))
    assert renewed.status_code == 200 and renewed.json()["access_token"] != access
    assert jwt_server.post("/api/v1/auth/refresh", headers=bearer(access)).status_code == 401  # not a refresh token
    assert (
        jwt_server.post("/api/v1/auth/logout", headers=bearer(access), json={"refresh_token": refresh}).status_code
        == 200
    )
    revoked = jwt_server.get("/api/v1/auth/profile", headers=bearer(access))
    assert revoked.status_code == 401 and revoked.json()["error"]["message"] == "revoked token"
    assert jwt_server.post("/api/v1/auth/refresh", headers=bearer(refresh)).status_code == 401
    jwt_server.restart()
    assert jwt_server.get("/api/v1/auth/profile", headers=bearer(access)).status_code == 401


def test_requests_without_credentials_or_role_are_refused(jwt_server: Server, tokens) -> None:
    anonymous = jwt_server.post("/api/v1/generate", json=FAST)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert jwt_server.get("/api/v1/status").status_code == 401
    assert jwt_server.get("/api/v1/openapi.json").status_code == 200  # public
    forbidden = jwt_server.post("/api/v1/models/load", json={"model": "sd1"}, headers=bearer(tokens["alice"]))
    assert forbidden.status_code == 403
    assert jwt_server.get("/api/v1/system", headers=bearer(tokens["alice"])).status_code == 403
    assert jwt_server.get("/api/v1/system", headers=bearer(tokens["root-admin"])).status_code == 200


def test_bad_tokens(jwt_server: Server, tokens) -> None:
    secret = (jwt_server.data_dir / "jwt_secret").read_text().strip()
    assert oct((jwt_server.data_dir / "jwt_secret").stat().st_mode & 0o777) == "0o600"
    now = int(time.time())
    claims = {
        "sub": "alice",
        "role": "admin",
        "type": "access",
        "jti": secrets.token_hex(8),
        "fresh": False,
        "iat": now,
        "nbf": now,
    }
    expired = pyjwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256")
    other_alg = pyjwt.encode({**claims, "exp": now + 600}, secret, algorithm="HS512")
    unsigned = pyjwt.encode({**claims, "exp": now + 600}, None, algorithm="none")
    forged = pyjwt.encode({**claims, "exp": now + 600}, "not-the-secret", algorithm="HS256")
    good = tokens["alice"]
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for token, message in (
        (expired, "expired token"),
        (other_alg, None),
        (unsigned, None),
        (forged, None),
        (tampered, None),
        ("garbage", None),
    ):
        response = jwt_server.get("/api/v1/auth/profile", headers=bearer(token))
        assert response.status_code == 401, token
        if message:
            assert response.json()["error"]["message"] == message
    # A token cannot raise its own role: the forged admin claims never got through.
    attempts = jwt_server.get("/api/v1/auth/attempts", headers=bearer(tokens["root-admin"])).json()["attempts"]
    assert any(a["reason"] == "expired token" for a in attempts)


def test_wrong_passwords_are_audited_and_throttled(models_dir, tmp_path) -> None:
    jwt_server = Server(
        tmp_path, models_dir, "--auth", "jwt", "--auth-max-failures", "3", "--auth-lockout-seconds", "60"
    )
    jwt_server.data_dir.mkdir(parents=True)
    add_user(jwt_server.data_dir, "bob", "bob-secret-1")
    add_user(jwt_server.data_dir, "root-admin", "admin-secret-1", role="admin")
    jwt_server.start()
    try:
        admin_token = login(jwt_server, "root-admin", "admin-secret-1").json()["access_token"]
        user_token = login(jwt_server, "bob", "bob-secret-1").json()["access_token"]
        _throttling(jwt_server, admin_token, user_token)
    finally:
        jwt_server.stop()


def _throttling(jwt_server: Server, admin_token: str, user_token: str) -> None:
    for _ in range(3):
        response = login(jwt_server, "bob", "wrong-password")
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_credentials"
    throttled = login(jwt_server, "bob", "bob-secret-1")  # even the right password, while locked out
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    same_ip = login(jwt_server, "nobody", "whatever")  # the client address is locked out too
    assert same_ip.status_code == 429
    attempts = jwt_server.get("/api/v1/auth/attempts", headers=bearer(admin_token)).json()["attempts"]
    bobs = [a for a in attempts if a["username"] == "bob"]
    # Newest first: the lockout, the three failures, then the login that got user_token.
    assert [a["outcome"] for a in bobs] == ["throttled", "failure", "failure", "failure", "success"]
    assert all(a["client_ip"] == "127.0.0.1" for a in bobs)
    assert "wrong-password" not in str(attempts) and "bob-secret-1" not in str(attempts)
    assert "wrong-password" not in jwt_server.log_text() and "bob-secret-1" not in jwt_server.log_text()
    audit_lines = [line for line in jwt_server.log_text().splitlines() if "sdrest.audit" in line]
    assert any("bob" in line and "failure" in line for line in audit_lines)
    assert jwt_server.get("/api/v1/auth/attempts", headers=bearer(user_token)).status_code == 403


def test_users_only_see_their_own_jobs_and_images(jwt_server: Server, tokens) -> None:
    alice, bob, admin = (bearer(tokens[n]) for n in ("alice", "bob", "root-admin"))
    job = jwt_server.post("/api/v1/generate", json={**FAST, "wait": True}, headers=alice).json()
    assert job["status"] == "completed"
    job_id, image = job["job_id"], job["images"][0]["url"]
    for method, path in (
        ("get", f"/api/v1/generate/{job_id}"),
        ("get", f"/api/v1/jobs/{job_id}"),
        ("delete", f"/api/v1/generate/{job_id}"),
        ("delete", f"/api/v1/jobs/{job_id}"),
        ("get", image),
        ("get", f"/api/v1/generate/{job_id}/events"),
    ):
        response = getattr(requests, method)(jwt_server.url(path), headers=bob, timeout=30)
        assert response.status_code == 404, (method, path, response.status_code)
        assert getattr(requests, method)(jwt_server.url(path), timeout=30).status_code == 401
    assert jwt_server.get(image, headers=alice).status_code == 200
    assert jwt_server.get(image, headers=admin).status_code == 200
    bobs_queue = jwt_server.get("/api/v1/queue", headers=bob).json()
    assert job_id not in {j["job_id"] for j in bobs_queue["jobs"]}
    assert job_id in {j["job_id"] for j in jwt_server.get("/api/v1/queue", headers=admin).json()["jobs"]}
    with jwt_server.get("/api/v1/events", params={"last_event_id": 0}, headers=bob, stream=True, timeout=5) as stream:
        seen = []
        try:
            for event in sse_events(stream):
                seen.append(event)
                if len(seen) > 50:
                    break
        except requests.exceptions.ConnectionError:
            pass
    assert all(e["data"].get("job_id") != job_id for e in seen)


def test_browser_cookies_are_httponly_strict_and_csrf_protected(jwt_server: Server) -> None:
    session = requests.Session()
    response = session.post(
        jwt_server.url("/api/v1/auth/login"),
        json={"username": "alice", "password": "alice-secret-1", "cookie": True},
        timeout=30,
    )
    assert response.status_code == 200
    cookies = response.headers.get("Set-Cookie", "")
    assert "access_token_cookie=" in cookies and "HttpOnly" in cookies and "SameSite=Strict" in cookies
    assert session.get(jwt_server.url("/api/v1/auth/profile"), timeout=30).json()["username"] == "alice"
    refused = session.post(jwt_server.url("/api/v1/generate"), json=FAST, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "csrf_failed"
    csrf = session.cookies.get("csrf_access_token")
    accepted = session.post(
        jwt_server.url("/api/v1/generate"), json={**FAST, "wait": False}, headers={"X-CSRF-TOKEN": csrf}, timeout=30
    )
    assert accepted.status_code == 202
    jwt_server.delete(
        f"/api/v1/generate/{accepted.json()['job_id']}", headers={"X-CSRF-TOKEN": csrf}, cookies=session.cookies
    )


def test_api_keys(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1", "--auth", "api-key")
    server.data_dir.mkdir(parents=True)
    created = sdrest_cli("keys", "create", "--name", "ci", "--role", "user", "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    key = next(word for word in created.stdout.split() if word.startswith("sdr_"))
    server.start()
    try:
        assert server.get("/api/v1/status", headers={"X-API-Key": key}).status_code == 200
        assert server.get("/api/v1/status", headers=bearer(key)).status_code == 200
        assert server.get("/api/v1/status").status_code == 401
        assert server.get("/api/v1/status", headers={"X-API-Key": key + "x"}).status_code == 401
        assert server.post("/api/v1/auth/login", json={"username": "a", "password": "b"}).status_code == 400
        listed = sdrest_cli("keys", "list", "--data-dir", str(server.data_dir))
        assert key not in listed.stdout and key[:8] in listed.stdout
        revoked = sdrest_cli("keys", "revoke", key[:8], "--data-dir", str(server.data_dir))
        assert revoked.returncode == 0, revoked.stderr
        assert server.get("/api/v1/status", headers={"X-API-Key": key}).status_code == 401
    finally:
        server.stop()


@pytest.fixture()
def system_user():
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.fail("these tests create real accounts: run them as root with useradd available (CI does)")
    name = f"sdrt{secrets.token_hex(3)}"
    group = f"{name}g"
    password = "Unix-pass-" + secrets.token_hex(4)
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    subprocess.run(["groupadd", group], check=True)
    yield name, password, group
    subprocess.run(["userdel", name], check=False)
    subprocess.run(["groupdel", group], check=False)


def test_unix_accounts_with_a_group_restriction(models_dir, tmp_path, system_user) -> None:
    name, password, group = system_user
    server = Server(tmp_path, models_dir, "--auth", "unix", "--auth-group", group).start()
    try:
        outsider = login(server, name, password)
        assert outsider.status_code == 401  # right password, not in the group
        subprocess.run(["usermod", "-a", "-G", group, name], check=True)
        response = login(server, name, password)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        profile = server.get("/api/v1/auth/profile", headers=bearer(token)).json()
        assert profile == {**profile, "username": name, "method": "unix", "role": "user"}
        assert login(server, name, "wrong").status_code == 401
    finally:
        server.stop()


def test_pam_service(models_dir, tmp_path, system_user) -> None:
    name, password, _ = system_user
    service = f"sdrest-test-{secrets.token_hex(3)}"
    pam_file = Path("/etc/pam.d") / service
    pam_file.write_text("auth required pam_unix.so\naccount required pam_unix.so\n")
    server = Server(tmp_path, models_dir, "--auth", "pam", "--pam-service", service).start()
    try:
        response = login(server, name, password)
        assert response.status_code == 200, response.text
        assert response.json()["user"]["method"] == "pam"
        assert login(server, name, password + "x").status_code == 401
        pam_file.write_text("auth requisite pam_deny.so\naccount required pam_unix.so\n")
        assert login(server, name, password).status_code == 401  # the service decides
    finally:
        server.stop()
        pam_file.unlink()


def test_optional_auth_guests_and_users(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1", "--auth", "optional")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "carol", "carol-secret-1")
    server.start()
    try:
        assert server.get("/api/v1/status").status_code == 200  # guests may read
        guest = server.post("/api/v1/generate", json=FAST)
        assert guest.status_code == 403  # but not generate
        assert server.get("/api/v1/auth/profile").json()["role"] == "guest"
        token = login(server, "carol", "carol-secret-1").json()["access_token"]
        submitted = server.post("/api/v1/generate", json={**FAST, "wait": False}, headers=bearer(token))
        assert submitted.status_code == 202
        assert server.get(f"/api/v1/generate/{submitted.json()['job_id']}").status_code == 404  # guests ≠ carol
        server.restart("--model", "sd1", "--auth", "optional", "--guest-can-generate")
        assert server.post("/api/v1/generate", json={**FAST, "wait": False}).status_code == 202
    finally:
        server.stop()


def test_trusted_proxy_decides_the_client_address(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--auth", "jwt", "--trusted-proxy", "127.0.0.1")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "admin", "admin-secret-1", role="admin")
    server.start()
    try:
        server.post(
            "/api/v1/auth/login", json={"username": "x", "password": "y"}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        token = login(server, "admin", "admin-secret-1").json()["access_token"]
        attempts = server.get("/api/v1/auth/attempts", headers=bearer(token)).json()["attempts"]
        assert any(a["username"] == "x" and a["client_ip"] == "203.0.113.9" for a in attempts)
    finally:
        server.stop()


def test_deprecated_flags_map_and_warn(tmp_path) -> None:
    for flag, method in (("--enable-unix-auth", "unix"), ("--enable-pam-auth", "pam")):
        result = sdrest_cli("serve", flag, "--print-config", "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert f'"auth": "{method}"' in result.stdout
        assert "deprecated" in result.stderr and f"--auth {method}" in result.stderr
