"""Browser tests: headless Chromium (Debian's, driven by Playwright) against a real ``sdrest serve``
with the synthetic SD1 model, the real worker and real SQLite.

Every page records console errors, uncaught exceptions and failed requests; a test fails if any
appear that it did not expect. Screenshots of each view go to ``tests/webui/screenshots/``
(ignored by git) at 1280x800 and 390x844.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sdrest.synthetic import SyntheticModels
from server_helpers import Server
from webui_helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PageProblems, ui_models


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def ui_server(models: SyntheticModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module's tests (auth off, the SD1 model preloaded)."""
    root = tmp_path_factory.mktemp("ui-server")
    server = Server(root, ui_models(models, root / "models"), "--model", "sd1").start()
    yield server
    server.stop()


@pytest.fixture
def open_page(browser) -> Iterator:
    """``open_page(server, viewport=DESKTOP) -> (page, problems)``; fails the test on unexpected problems."""
    opened = []

    def _open(server: Server, viewport: dict[str, int] = DESKTOP, path: str = "/"):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        problems = PageProblems(page)
        opened.append((context, problems))
        page.goto(server.url(path))
        return page, problems

    yield _open
    found = []
    for context, problems in opened:
        context.close()
        found += problems.unexpected()
    assert not found, "\n".join(found)
