"""The web UI with authentication on: sign in and out, the session in HttpOnly cookies with the
CSRF header, a mid-session sign-in over the intact form, API keys, guests, and a server restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdrest.models.recipes import load_recipes
from sdrest.synthetic import SyntheticModels
from server_helpers import Server
from webui_helpers import add_user, create_key, screenshot, ui_models

pytestmark = pytest.mark.slow

FINISH = 180_000  # ms: how long a browser wait may last before the test fails (not a speed bound)
#: The browser logs the answer to the UI's "who am I?" probe while signed out.
SIGNED_OUT = "status of 401"


@pytest.fixture(scope="module")
def jwt_server(models: SyntheticModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-jwt")
    server = Server(root, ui_models(models, root / "models"), "--model", "sd1", "--auth", "jwt")
    server.data_dir.mkdir(parents=True)
    add_user(server.data_dir, "alice", "alice-secret-1")
    server.start()
    yield server
    server.stop()


def sign_in(page, username: str = "alice", password: str = "alice-secret-1", within: str = "") -> None:
    page.fill(f"{within} input[name=username]".strip(), username)
    page.fill(f"{within} input[name=password]".strip(), password)
    page.click(f"{within} .login-form button[type=submit]".strip())


def test_sign_in_generate_and_sign_out(jwt_server: Server, open_page) -> None:
    page, problems = open_page(jwt_server)
    problems.allow(SIGNED_OUT)
    page.wait_for_selector(".login-screen")
    screenshot(page, "login")
    sign_in(page)
    page.locator(".user-menu summary", has_text="alice").wait_for()
    # The session is in HttpOnly cookies; nothing token-like sits in the page's storage.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["access_token_cookie"]["httpOnly"] and cookies["refresh_token_cookie"]["httpOnly"]
    stored = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert cookies["access_token_cookie"]["value"] not in stored and "eyJ" not in stored
    # A generation is a POST: it carries the CSRF header the server checks.
    page.fill("#prompt", "signed in")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=steps]", "1")
    page.click("button.generate")
    page.wait_for_selector(".result[data-status=completed]", timeout=FINISH)
    job_id = page.locator(".result[data-job]").get_attribute("data-job")
    assert jwt_server.get(f"/api/v1/generate/{job_id}").status_code == 401  # not without credentials
    page.click(".user-menu summary")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector(".login-screen")
    # The old access cookie was revoked by the server, not just forgotten by the browser.
    old = cookies["access_token_cookie"]["value"]
    assert jwt_server.get("/api/v1/auth/profile", cookies={"access_token_cookie": old}).status_code == 401


def test_a_lost_session_asks_to_sign_in_over_the_intact_form(jwt_server: Server, open_page) -> None:
    page, problems = open_page(jwt_server)
    problems.allow(SIGNED_OUT)
    sign_in(page)
    page.wait_for_selector("#prompt")
    page.fill("#prompt", "do not lose me")
    page.context.clear_cookies()  # the session ends (expired, revoked, another tab signed out)
    page.fill("input[name=width]", "64")
    page.click("button.generate")
    dialog = page.locator("dialog.login-dialog")
    dialog.wait_for()
    screenshot(page, "login-dialog")
    sign_in(page, within="dialog.login-dialog")
    dialog.wait_for(state="detached")
    assert page.input_value("#prompt") == "do not lose me"


def test_a_pasted_api_key_signs_in_for_this_tab_only(jwt_server: Server, open_page) -> None:
    key = create_key(jwt_server.data_dir, "ui-test", owner="alice")
    page, problems = open_page(jwt_server)
    problems.allow(SIGNED_OUT)
    page.click(".api-key summary")
    page.fill("input[name=api_key]", key)
    page.click(".login-form button[type=submit]")
    page.locator(".user-menu summary", has_text="alice").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('sdrest.apiKey')") == key
    assert key not in page.evaluate("() => JSON.stringify({...localStorage})")
    # The event stream carries the key too: a job started elsewhere by the same owner shows up live.
    page.click("a.nav[href='#queue']")
    response = jwt_server.post(
        "/api/v1/generate",
        json={"prompt": "by key", "width": 64, "height": 64, "steps": 8, "wait": False},
        headers={"X-API-Key": key},
    )
    job_id = response.json()["job_id"]
    page.locator(f".gallery .card[data-job='{job_id}'][data-status=completed]").wait_for(timeout=FINISH)


def test_a_wrong_password_is_shown_and_nothing_is_stored(jwt_server: Server, open_page) -> None:
    page, problems = open_page(jwt_server)
    problems.allow(SIGNED_OUT)
    sign_in(page, password="wrong-password")
    error = page.locator(".login-form .field-error")
    error.wait_for()
    assert "wrong user name or password" in error.inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "access_token_cookie"]


@pytest.fixture(scope="module")
def optional_servers(models: SyntheticModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    servers = {}
    for name, extra in (("read-only", ()), ("may-generate", ("--guest-can-generate",))):
        root = tmp_path_factory.mktemp(f"ui-{name}")
        servers[name] = Server(root, ui_models(models, root / "models"), "--auth", "optional", *extra).start()
    yield servers
    for server in servers.values():
        server.stop()


def test_a_guest_without_the_generate_right_sees_no_generate_button(optional_servers, open_page) -> None:
    page, _ = open_page(optional_servers["read-only"])
    page.locator(".banner", has_text="Browsing as a guest").wait_for()
    page.wait_for_selector(".form-col .notice")
    assert page.locator("button.generate").count() == 0
    assert "Guests can browse" in page.locator(".form-col .notice").inner_text()
    page.click("a.nav[href='#models']")
    page.wait_for_selector(".models-view")
    assert page.get_by_role("button", name="Rescan").count() == 0  # admin actions are hidden
    screenshot(page, "guest")


def test_a_guest_allowed_to_generate_sees_the_button(optional_servers, open_page) -> None:
    page, _ = open_page(optional_servers["may-generate"])
    page.locator(".banner", has_text="Browsing as a guest").wait_for()
    page.wait_for_selector("button.generate")


def test_a_server_restart_shows_a_banner_and_recovers_by_itself(
    models: SyntheticModels, open_page, tmp_path: Path
) -> None:
    server = Server(tmp_path, ui_models(models, tmp_path / "models"), "--model", "sd1").start()
    try:
        page, problems = open_page(server)
        page.locator(".app-header .model-pill", has_text="sd1").wait_for(timeout=FINISH)
        problems.allow("ERR_CONNECTION_REFUSED")  # what the browser logs while the server is away
        server.stop()
        banner = page.locator(".banner.error")
        banner.wait_for(timeout=FINISH)
        assert "cannot be reached" in banner.inner_text()
        screenshot(page, "server-down")
        server.start()  # the same port
        job = server.submit(prompt="after the restart")
        banner.wait_for(state="detached", timeout=FINISH)
        # No state change was missed: the job queued while the page reconnected is listed and ends.
        page.click("a.nav[href='#queue']")
        page.locator(f".gallery .card[data-job='{job['job_id']}'][data-status=completed]").wait_for(timeout=FINISH)
    finally:
        server.stop()


def test_a_user_sees_the_recipes_but_no_install_controls(jwt_server: Server, open_page) -> None:
    page, problems = open_page(jwt_server)
    problems.allow(SIGNED_OUT)
    sign_in(page)
    page.locator(".user-menu summary", has_text="alice").wait_for()
    page.get_by_role("link", name="Models").first.click()
    page.get_by_role("tab", name="Get models").click()
    page.locator(".get-models .notice", has_text="An admin installs models").wait_for()
    # Every shipped recipe is carded (the route lists the whole catalogue, with installed state).
    page.wait_for_function("(n) => document.querySelectorAll('.recipe-card').length === n", arg=len(load_recipes()))
    assert page.locator("#download-source").count() == 0
    assert page.get_by_role("button", name=re.compile("^Install")).count() == 0
