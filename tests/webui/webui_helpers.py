"""Helpers of the browser tests: Chromium options, page problem recording, screenshots, servers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from sdrest.synthetic import SyntheticModels
from server_helpers import link_models

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Options that keep Debian's Chromium quiet and offline in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class PageProblems:
    """What went wrong in a page: console errors, uncaught exceptions, failed requests."""

    def __init__(self, page, allowed: tuple[str, ...] = ()) -> None:
        self.items: list[str] = []
        self.allowed = list(allowed)
        page.on("console", lambda m: m.type == "error" and self.items.append(f"console: {m.text} {m.location}"))
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        failure = request.failure or ""
        # The app aborts its own event stream when it reconnects or signs in again: not a failure.
        if "ERR_ABORTED" in failure and request.url.endswith("/api/v1/events"):
            return
        self.items.append(f"request failed: {request.method} {request.url} {failure}")

    def allow(self, fragment: str) -> None:
        """Expect problems containing ``fragment`` (e.g. the browser's own log of a 401)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [item for item in self.items if not any(fragment in item for fragment in self.allowed)]


def screenshot(page, name: str) -> None:
    """Save the view at 1280x800 and at 390x844 (then restore the page's own size)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}-{viewport['width']}x{viewport['height']}.png"))
    page.set_viewport_size(size)


def ui_models(models: SyntheticModels, root: Path) -> Path:
    """The synthetic model tree plus a second checkpoint name (same weights) to switch to."""
    tree = link_models(models, root)
    other = tree / "checkpoints" / "other.safetensors"
    if not other.exists():
        other.hardlink_to(models.checkpoint)
    return tree


def add_user(data_dir: Path, name: str, password: str, role: str = "user") -> None:
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest"
    result = subprocess.run(
        [exe, "users", "add", name, "--password-stdin", "--role", role, "--data-dir", str(data_dir)],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def create_key(data_dir: Path, name: str, role: str = "user", owner: str | None = None) -> str:
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or "sdrest"
    result = subprocess.run(
        [
            exe,
            "keys",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--data-dir",
            str(data_dir),
            *(["--owner", owner] if owner else []),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
