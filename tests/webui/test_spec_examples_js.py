"""The spec's browser example (``fetch``) and the live-progress example, run in headless
Chromium from a page served on another port (another origin), against a real server started
with ``--cors-origins`` for that page."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_helpers import FAST, Server, free_port, sd1_server
from spec_text import EXAMPLES, example
from webui_helpers import PageProblems

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page_site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """A plain static web server on its own port: the examples' pages live there."""
    root = tmp_path_factory.mktemp("site")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api(models, page_site, tmp_path_factory) -> Iterator[Server]:
    yield from sd1_server(models, tmp_path_factory, "spec-js", "--cors-origins", page_site[1], "--wait-timeout", "3600")


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context()
    page = context.new_page()
    # Closing an EventSource aborts its request, and the plain page server has no favicon:
    # expected, not problems.
    problems = PageProblems(page, allowed=("/events net::ERR_ABORTED", "/favicon.ico"))
    yield page
    context.close()
    assert not problems.unexpected(), problems.unexpected()


def test_spec_fetch_example_shows_the_generated_image(page, page_site, api: Server) -> None:
    root, origin = page_site
    shutil.copy(EXAMPLES / "generate_fetch.html", root / "generate_fetch.html")
    (root / "generate_fetch.js").write_text(example("generate_fetch.js", api.base))
    page.goto(f"{origin}/generate_fetch.html")
    page.click("#generate")
    image = page.wait_for_selector("img", timeout=3_600_000)  # 20 steps at 512x512 on a CPU
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight, img.src.slice(0, 22)]")
    assert size == [512, 512, "data:image/png;base64,"]


def test_progress_example_shows_live_steps_then_the_image(page, page_site, api: Server) -> None:
    root, origin = page_site
    for name in ("progress_sse.html", "progress_sse.js"):
        shutil.copy(EXAMPLES / name, root / name)
    # A job ahead in the queue: ours is still queued when its event stream opens, so every
    # sampling step of it is seen live.
    ahead = api.submit(**{**FAST, "steps": 12, "seed": 7})
    page.goto(f"{origin}/progress_sse.html?server={api.base}&size=64&steps=4")
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => window.seen.push(document.getElementById('status').textContent))
            .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});
    }""")
    page.click("button[type=submit]")
    image = page.wait_for_selector("#images img", timeout=600_000)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 64]
    assert page.eval_on_selector("#status", "e => e.textContent") == "completed"
    assert page.eval_on_selector("#progress", "e => e.value") == 100
    seen = page.evaluate("window.seen")
    assert "sampling 4/4" in seen, seen
    assert api.wait_job(ahead["job_id"])["status"] == "completed"
