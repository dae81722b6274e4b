"""Cross-origin access: off by default, listed origins (with credentials) or ``*`` (without),
preflights answered even where authentication is required."""

from __future__ import annotations

import pytest
import requests

from sdrest.settings import Settings, SettingsError
from server_helpers import FAST, Server

PAGE = "http://127.0.0.1:5999"
OTHER = "http://evil.example"


def _preflight(server: Server, origin: str, path: str = "/api/v1/generate") -> requests.Response:
    return requests.options(
        server.url(path),
        timeout=30,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )


@pytest.fixture()
def start(tmp_path):
    servers: list[Server] = []

    def _start(*args: str) -> Server:
        root = tmp_path / str(len(servers))
        root.mkdir()
        server = Server(root, tmp_path / "models", *args).start(wait_for_worker=False)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


def test_no_cross_origin_access_by_default(start) -> None:
    server = start()
    preflight = _preflight(server, PAGE)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    plain = server.get("/api/v1/status", headers={"Origin": PAGE})
    assert plain.status_code == 200 and "Access-Control-Allow-Origin" not in plain.headers


def test_listed_origins_get_credentials_and_others_nothing(start) -> None:
    server = start("--cors-origins", f"{PAGE}, https://app.example.com")
    preflight = _preflight(server, PAGE)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == PAGE
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization"} <= allowed
    assert "Origin" in preflight.headers["Vary"]
    answer = server.get("/api/v1/status", headers={"Origin": "https://app.example.com"})
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Location" in answer.headers["Access-Control-Expose-Headers"]
    refused = _preflight(server, OTHER)
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Origin" not in server.get("/api/v1/status", headers={"Origin": OTHER}).headers


def test_any_origin_gets_no_credentials(start) -> None:
    server = start("--cors-origins", "*")
    preflight = _preflight(server, OTHER)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def test_preflight_needs_no_credentials_but_the_request_does(start) -> None:
    server = start("--cors-origins", PAGE, "--auth", "api-key")
    preflight = _preflight(server, PAGE)
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == PAGE
    refused = server.post("/api/v1/generate", json=FAST, headers={"Origin": PAGE})
    assert refused.status_code == 401
    # the page can read why: the error carries the CORS headers too
    assert refused.headers["Access-Control-Allow-Origin"] == PAGE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("*, http://a.example", "cannot be combined"),
        ("http://a.example/path", "is not an origin"),
        ("a.example", "is not an origin"),
        ("ftp://a.example", "is not an origin"),
    ],
)
def test_bad_origins_are_refused_naming_the_setting(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"cors_origins: .*{message}"):
        Settings.load({"cors_origins": value}, environ={})


def test_origins_are_parsed_from_a_comma_separated_list() -> None:
    settings = Settings.load({"cors_origins": " http://a.example:8080/ ,https://[::1]:9 "}, environ={})
    assert settings.cors_origin_list == ["http://a.example:8080", "https://[::1]:9"]
