"""Static UI files from --ui-dir, never from outside it."""

from __future__ import annotations

from sdrest.app import close_app, create_app
from sdrest.settings import Settings


def test_ui_dir_is_served_and_contained(tmp_path) -> None:
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<h1>sdrest</h1>")
    (ui / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")
    app = create_app(Settings(data_dir=tmp_path / "data", ui_dir=ui), start_worker=False)
    try:
        client = app.test_client()
        assert client.get("/").headers["Location"] == "/ui/"
        assert b"sdrest" in client.get("/ui/").data
        assert client.get("/ui/app.js").status_code == 200
        for attempt in ("/ui/../secret.txt", "/ui/%2e%2e/secret.txt", "/ui//etc/passwd"):
            response = client.get(attempt, follow_redirects=True)
            assert response.status_code == 404 and b"secret" not in response.data
        missing = client.get("/ui/nope.js")
        assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    finally:
        close_app(app)


def test_no_ui_gives_a_json_404(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", ui_dir=tmp_path / "empty"), start_worker=False)
    try:
        response = app.test_client().get("/ui/")
        assert response.status_code == 404 and "web UI" in response.get_json()["error"]["message"]
    finally:
        close_app(app)


def test_the_bundled_ui_is_served_without_ui_dir(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"), start_worker=False)
    try:
        client = app.test_client()
        page = client.get("/ui/")
        assert page.status_code == 200 and b'<div id="app">' in page.data
        assert page.headers["Cache-Control"] == "no-cache"  # revalidated, so an upgrade is seen at once
        module = client.get("/ui/js/main.js")
        assert module.status_code == 200 and module.mimetype in ("text/javascript", "application/javascript")
        vendored = client.get("/ui/vendor/preact.mjs")  # browsers refuse modules of any other type
        assert vendored.status_code == 200 and vendored.mimetype in ("text/javascript", "application/javascript")
    finally:
        close_app(app)


def test_every_ui_response_refuses_framing_sniffing_and_foreign_scripts(tmp_path) -> None:
    # Clickjacking: with --auth none a page framing the UI could click as admin.
    app = create_app(Settings(data_dir=tmp_path / "data"), start_worker=False)
    try:
        client = app.test_client()
        for path in ("/", "/ui/", "/ui/js/main.js", "/ui/app.css", "/ui/vendor/preact.mjs", "/ui/icon.svg", "/ui/nope"):
            response = client.get(path)
            assert response.status_code in (200, 302, 404), path
            policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
            assert policy["frame-ancestors"] == "'none'" and policy["script-src"] == "'self'", path
            assert (
                policy["object-src"] == "'none'" and "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
            )
            assert response.headers["X-Frame-Options"] == "DENY", path
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
    finally:
        close_app(app)
