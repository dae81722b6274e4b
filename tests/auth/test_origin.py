"""DNS rebinding (Host) and cross-site requests (Origin, simple POSTs) are refused in every auth
mode, while browsers on the server's own pages and programs without an Origin are served."""

from __future__ import annotations

import pytest
import requests

from sdrest.app import close_app, create_app
from sdrest.settings import Settings, SettingsError
from server_helpers import Server, link_models

JSON = {"Content-Type": "application/json"}


@pytest.fixture()
def client(tmp_path):
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", allowed_hosts="sd.lan"), start_worker=False
    )
    try:
        yield app.test_client()
    finally:
        close_app(app)


def _code(response) -> str | None:
    body = response.get_json(silent=True) or {}
    return (body.get("error") or {}).get("code")


@pytest.mark.parametrize(
    "host", ["localhost:8080", "127.0.0.1", "[::1]:8080", "127.0.0.2:1", "ui.localhost", "sd.lan:8080", "SD.LAN"]
)
def test_loopback_names_host_and_allowed_hosts_are_served(client, host) -> None:
    assert client.get("/api/v1/status", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example", "10.0.0.5"])
def test_other_host_names_are_refused(client, host) -> None:
    response = client.get("/api/v1/status", headers={"Host": host})
    assert response.status_code == 403 and _code(response) == "host_not_allowed"
    assert response.get_json()["error"]["field"] == "Host"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", **JSON},
        {"Origin": "null", **JSON},
        {"Origin": "http://localhost:9999", **JSON},  # another local port is another origin
    ],
)
def test_foreign_origins_cannot_change_anything(client, headers) -> None:
    response = client.post("/api/v1/models/scan", headers={"Host": "localhost:8080", **headers}, data="{}")
    assert response.status_code == 403 and _code(response) == "cross_origin_refused"
    cancel = client.delete("/api/v1/generate/x", headers={"Host": "localhost:8080", **headers})
    assert cancel.status_code == 403


def test_browser_posts_need_json_or_a_custom_header(client) -> None:
    own = {"Host": "localhost:8080", "Origin": "http://localhost:8080"}
    form = client.post("/api/v1/models/scan", headers=own, data={"a": "b"})
    assert form.status_code == 403 and _code(form) == "csrf_refused"
    client.set_cookie("x", "1", domain="localhost")
    cookie_only = client.post(
        "/api/v1/models/scan", headers={"Host": "localhost"}, data="a=b", content_type="text/plain"
    )
    assert cookie_only.status_code == 403 and _code(cookie_only) == "csrf_refused"
    for extra in (JSON, {"X-Requested-With": "sdrest"}, {"Content-Type": "application/merge-patch+json"}):
        response = client.post("/api/v1/models/scan", headers={**own, **extra}, data="{}")
        assert response.status_code != 403, response.get_json()


def test_programs_without_origin_or_cookies_are_served(client) -> None:
    # e.g. the openai SDK's multipart images.edit, curl -F: not something a page can make a browser send
    response = client.post("/api/v1/models/scan", headers={"Host": "127.0.0.1:8080"}, data={"file": "x"})
    assert response.status_code != 403, response.get_json()
    bearer = client.post(
        "/api/v1/models/scan",
        headers={"Host": "127.0.0.1:8080", "Authorization": "Bearer k", "Origin": "http://evil.example"},
        data={"a": "b"},
    )
    assert bearer.status_code != 403  # a credential no page can attach by itself


@pytest.mark.parametrize("auth", ["none", "jwt", "api-key", "optional", "unix", "pam"])
def test_a_foreign_host_is_refused_in_every_auth_mode(tmp_path, auth) -> None:
    # With --auth optional a rebinding page would act as a guest, with unix/pam as whoever the
    # browser's stored credentials name: the Host check is not only for --auth none.
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", auth=auth), start_worker=False
    )
    try:
        client = app.test_client()
        rebound = client.get("/api/v1/openapi.json", headers={"Host": "evil.example"})
        assert rebound.status_code == 403 and _code(rebound) == "host_not_allowed"
        assert client.get("/api/v1/openapi.json", headers={"Host": "localhost:8080"}).status_code == 200
    finally:
        close_app(app)


def test_auth_none_on_every_interface_needs_allowed_hosts(tmp_path) -> None:
    for host in ("0.0.0.0", "::"):
        with pytest.raises(SettingsError) as refused:
            Settings.from_mapping({"host": host, "auth": "none"})
        assert "--allowed-hosts" in str(refused.value) and str(refused.value).startswith("allowed_hosts:")
    Settings.from_mapping(
        {"host": "0.0.0.0", "auth": "jwt"}
    )  # credentials are needed: no rebinding page acts as anyone
    app = create_app(
        Settings(host="0.0.0.0", allowed_hosts="sd.lan", data_dir=tmp_path / "data", models_dir=tmp_path / "models"),
        start_worker=False,
    )
    try:
        client = app.test_client()
        assert client.get("/api/v1/status", headers={"Host": "sd.lan:8080"}).status_code == 200
        assert client.get("/api/v1/status", headers={"Host": "evil.example"}).status_code == 403
    finally:
        close_app(app)


@pytest.mark.parametrize("authorization", ["Basic YWxpY2U6c2VjcmV0", "x", "Bearer", "Digest username=alice"])
def test_ambient_or_foreign_authorization_does_not_skip_the_cross_site_checks(client, authorization) -> None:
    # Browsers send remembered Basic credentials with a cross-site form on their own: only a
    # bearer token or an X-API-Key is something a page cannot attach.
    headers = {"Host": "localhost:8080", "Authorization": authorization}
    cross = client.post(
        "/api/v1/models/scan",
        headers={**headers, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        data={"a": "b"},
    )
    assert cross.status_code == 403 and _code(cross) == "cross_origin_refused"
    form = client.post("/api/v1/models/scan", headers={**headers, "Sec-Fetch-Site": "cross-site"}, data={"a": "b"})
    assert form.status_code == 403 and _code(form) == "csrf_refused"


def test_cors_origins_pass_the_origin_check(tmp_path) -> None:
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", cors_origins="https://app.example"),
        start_worker=False,
    )
    try:
        client = app.test_client()
        headers = {"Host": "localhost:8080", **JSON}
        ok = client.post("/api/v1/models/scan", headers={**headers, "Origin": "https://app.example"}, data="{}")
        assert ok.status_code != 403
        other = client.post("/api/v1/models/scan", headers={**headers, "Origin": "https://evil.example"}, data="{}")
        assert other.status_code == 403
    finally:
        close_app(app)


@pytest.mark.slow
def test_a_real_server_refuses_rebinding_and_cross_site_posts(models, tmp_path) -> None:
    server = Server(tmp_path, link_models(models, tmp_path / "models")).start(wait_for_worker=False)
    try:
        rebound = requests.get(
            server.url("/api/v1/status"), headers={"Host": f"evil.example:{server.port}"}, timeout=30
        )
        assert rebound.status_code == 403
        cross = requests.post(
            server.url("/api/v1/generate"), data={"prompt": "x"}, timeout=30, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        # The review's attack: a cross-site form to the A1111 route carrying the browser's Basic credentials.
        basic = requests.post(
            server.url("/sdapi/v1/txt2img"),
            data={"prompt": "x"},
            auth=("alice", "secret"),
            timeout=30,
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert basic.status_code == 403 and basic.json()["error"] == "cross_origin_refused"  # A1111's error shape
        ours = requests.post(
            server.url("/api/v1/generate"),
            json={"prompt": "x", "steps": "many"},
            timeout=30,
            headers={"Origin": server.base},
        )
        # past the origin check, refused for its bad field
        assert ours.status_code in (400, 422) and ours.json()["error"]["field"] == "steps"
    finally:
        server.stop()
