"""Tokens lose their rights when the account does: token generations, refresh-token rotation
with reuse detection, roles reloaded at refresh, ``sdrest users revoke-sessions``; plus the
login hardening around them (cookie bodies, form logins, logout, the guest name, secrets)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FakeClock
from sdrest.auth.audit import AuditLimiter
from sdrest.auth.store import AuthStore
from sdrest.auth.throttle import USER_CEILING, Throttle, client_bucket
from sdrest.auth.web import SecretError, jwt_secret
from sdrest.settings import Settings
from server_helpers import Server, link_models


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60)


# -- the store and the pieces, without a server ----------------------------------------------


def test_every_change_of_rights_bumps_the_token_generation(tmp_path) -> None:
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        store.add_user("alice", "alice-pw-1")
        assert store.token_generation("alice") == 0
        store.set_password("alice", "alice-pw-2")
        store.set_role("alice", "admin")
        store.set_disabled("alice", True)
        store.set_disabled("alice", False)
        assert store.token_generation("alice") == 4
        assert store.revoke_sessions("unix-only-account") == 1  # no row needed (unix/pam names)
        store.remove_user("alice")
        assert store.token_generation("alice") == 5
        store.add_user("bob", "bob-pw-1")
        store.check_password("bob", "bob-pw-1")  # a login (or a rehash) changes nothing
        assert store.token_generation("bob") == 0


def test_the_guest_name_is_reserved(tmp_path) -> None:
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        for name in ("guest", "Guest"):
            with pytest.raises(ValueError, match="reserved"):
                store.add_user(name, "some-password-1")
            with pytest.raises(ValueError, match="reserved"):
                store.create_key("k", "admin", owner=name)


def test_parallel_login_attempts_count_before_the_slow_check() -> None:
    throttle = Throttle(max_failures=3, window=300, lockout=300, clock=FakeClock())
    started = [throttle.begin("alice", "10.0.0.1") for _ in range(5)]  # none finished yet
    assert started[:3] == [None] * 3 and all(wait is not None for wait in started[3:])
    # Spread over addresses, the account's ceiling (USER_CEILING x 3) holds the same way.
    spread = [throttle.begin("alice", f"10.1.0.{i}") for i in range(3 * USER_CEILING + 2)]
    assert spread.count(None) == 3 * USER_CEILING - 3 and all(wait is not None for wait in spread[-2:])


def test_a_successful_login_takes_back_its_count() -> None:
    throttle = Throttle(max_failures=3, window=300, lockout=300, clock=FakeClock())
    for _ in range(10):  # many good logins from one address never lock it
        assert throttle.begin("alice", "10.0.0.1") is None
        throttle.success("alice", "10.0.0.1", begun=True)


def test_throttle_keys_fold_case_and_bucket_ipv6_by_64() -> None:
    throttle = Throttle(max_failures=2, window=300, lockout=300, clock=FakeClock())
    for i in range(2 * USER_CEILING):  # up to the account's ceiling, one address each
        throttle.begin(["Alice", " alice", "ALICE "][i % 3], f"192.0.2.{i}")
    assert throttle.begin("alice", "198.51.100.1") is not None  # one account, however spelt
    throttle.begin("carol", "2001:db8:1:2::10")
    throttle.begin("dave", "2001:db8:1:2:ffff::1")
    assert throttle.begin("bob", "2001:db8:1:2:abcd::9") is not None  # one /64, however many hosts
    assert throttle.begin("bob", "2001:db8:1:3::1") is None
    assert client_bucket("::ffff:192.0.2.7") == "192.0.2.7"


def test_audit_rows_of_rejections_are_rate_limited_per_client() -> None:
    clock = FakeClock()
    limiter = AuditLimiter(per_minute=3, clock=clock)
    assert [limiter.allow("10.0.0.1") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("10.0.0.2")
    clock.now += 61
    assert limiter.allow("10.0.0.1")


def test_loose_or_short_token_secrets_are_refused(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    secret = tmp_path / "jwt_secret"
    assert len(jwt_secret(settings)) >= 32  # made 0600
    secret.chmod(0o644)
    with pytest.raises(SecretError, match="mode 644"):
        jwt_secret(settings)
    secret.write_text("short")
    secret.chmod(0o600)
    with pytest.raises(SecretError, match="32 bytes"):
        jwt_secret(settings)
    with pytest.raises(SecretError, match="32 bytes"):
        jwt_secret(Settings(data_dir=tmp_path, jwt_secret="too-short"))
    if os.geteuid() == 0:
        secret.write_text("x" * 40)
        os.chown(secret, 65534, 65534)  # someone else's file
        with pytest.raises(SecretError, match="owner"):
            jwt_secret(settings)


# -- through a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions")
    server = Server(root, link_models(models, root / "models"), "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    with AuthStore(server.data_dir / "auth.sqlite3") as store:
        for name in ("alice", "bob", "carol", "dave"):
            store.add_user(name, f"{name}-pw-1")
    server.start()
    yield server
    server.stop()


def _login(server: Server, name: str, **extra: object) -> dict:
    response = server.post("/api/v1/auth/login", json={"username": name, "password": f"{name}-pw-1", **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _profile(server: Server, token: str) -> int:
    return server.get("/api/v1/auth/profile", headers=_bearer(token)).status_code


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("alice", ("role", "alice", "admin")),
        ("bob", ("passwd", "bob", "--password-stdin")),
        ("carol", ("revoke-sessions", "carol")),
    ],
)
def test_a_change_of_rights_revokes_every_token_at_once(server, name, change) -> None:
    tokens = _login(server, name)
    assert _profile(server, tokens["access_token"]) == 200
    result = _cli("users", *change, "--data-dir", str(server.data_dir), stdin=f"{name}-pw-1\n")
    assert result.returncode == 0, result.stderr
    assert _profile(server, tokens["access_token"]) == 401
    assert server.post("/api/v1/auth/refresh", headers=_bearer(tokens["refresh_token"])).status_code == 401
    if change[0] == "role":
        again = _login(server, name)
        assert again["user"]["role"] == "admin" and _profile(server, again["access_token"]) == 200


@pytest.mark.slow
def test_refresh_rotates_and_a_replayed_refresh_token_is_refused(server) -> None:
    first = _login(server, "dave")
    renewed = server.post("/api/v1/auth/refresh", headers=_bearer(first["refresh_token"]))
    assert renewed.status_code == 200
    second = renewed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert server.post("/api/v1/auth/refresh", headers=_bearer(first["refresh_token"])).status_code == 401
    assert _profile(server, second["access_token"]) == 200  # the rightful holder carries on
    assert server.post("/api/v1/auth/refresh", headers=_bearer(second["refresh_token"])).status_code == 200


@pytest.mark.slow
def test_cookie_logins_keep_tokens_out_of_the_body_and_forms_are_refused(server) -> None:
    body = _login(server, "alice", cookie=True)
    assert "access_token" not in body and "refresh_token" not in body and body["token_type"] == "cookie"
    form = server.post("/api/v1/auth/login", data={"username": "alice", "password": "alice-pw-1"})
    assert form.status_code == 415 and form.json()["error"]["field"] == "Content-Type"


@pytest.mark.slow
def test_logout_says_when_the_refresh_token_was_not_revoked(server) -> None:
    alice, bob = _login(server, "alice"), _login(server, "bob")
    response = server.post(
        "/api/v1/auth/logout", headers=_bearer(alice["access_token"]), json={"refresh_token": bob["refresh_token"]}
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "refresh_token"
    assert server.post("/api/v1/auth/refresh", headers=_bearer(bob["refresh_token"])).status_code == 200
    assert _profile(server, alice["access_token"]) == 401  # the caller's own token is gone anyway


@pytest.mark.slow
def test_refresh_with_an_api_key_is_refused_not_a_server_error(server) -> None:
    with AuthStore(server.data_dir / "auth.sqlite3") as store:
        key, _ = store.create_key("refresh-probe", "admin")
    response = server.post("/api/v1/auth/refresh", headers={"X-API-Key": key})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_a_demoted_users_api_key_loses_the_rights_it_had(server) -> None:
    with AuthStore(server.data_dir / "auth.sqlite3") as store:
        store.add_user("erin", "erin-pw-1")
        key, _ = store.create_key("erin-bot", "user", owner="erin")
    submit = {"prompt": "x", "steps": "many"}  # past the role check, refused for its field
    allowed = server.post("/api/v1/generate", json=submit, headers={"X-API-Key": key})
    assert allowed.status_code in (400, 422) and allowed.json()["error"]["field"] == "steps"
    demoted = _cli("users", "role", "erin", "guest", "--data-dir", str(server.data_dir))
    assert demoted.returncode == 0, demoted.stderr
    refused = server.post("/api/v1/generate", json=submit, headers={"X-API-Key": key})
    assert refused.status_code == 403
    assert server.get("/api/v1/status", headers={"X-API-Key": key}).status_code == 200  # still a guest


def test_tokens_stay_with_the_auth_method_that_issued_them(models, tmp_path) -> None:
    # A refresh token of a jwt user "alice" must not become Unix account "alice"'s session
    # after the server restarts with --auth unix (the same data folder, so the same secret).
    server = Server(tmp_path, link_models(models, tmp_path / "models"), "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    with AuthStore(server.data_dir / "auth.sqlite3") as store:
        store.add_user("alice", "alice-pw-1")
    server.start(wait_for_worker=False)
    try:
        tokens = server.post("/api/v1/auth/login", json={"username": "alice", "password": "alice-pw-1"}).json()
    finally:
        server.stop()
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    server.args = ["--auth", "unix", "--auth-group", "root"]
    server.start(wait_for_worker=False)
    try:
        refreshed = server.post("/api/v1/auth/refresh", headers=refresh)
        assert refreshed.status_code == 401 and "--auth jwt" in refreshed.json()["error"]["message"]
        assert server.get("/api/v1/auth/profile", headers=access).status_code == 401
    finally:
        server.stop()
    server.args = ["--auth", "jwt"]
    server.start(wait_for_worker=False)
    try:  # back under the method that issued them, they work again (nothing was revoked)
        assert server.get("/api/v1/auth/profile", headers=access).json()["username"] == "alice"
    finally:
        server.stop()


def test_unix_or_pam_without_a_group_warns_loudly(tmp_path, caplog) -> None:
    from sdrest.app import close_app, create_app

    for auth, group, warned in (("unix", None, True), ("pam", None, True), ("unix", "staff", False)):
        caplog.clear()
        app = create_app(
            Settings(
                data_dir=tmp_path / auth / str(group), models_dir=tmp_path / "models", auth=auth, auth_group=group
            ),
            start_worker=False,
        )
        close_app(app)
        assert (
            any("without --auth-group" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records) is warned
        )
