"""The web UI in a real browser against a real server: every view and its main flows."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import test_image as sample_image
from server_helpers import FAST, Server
from webui_helpers import screenshot

pytestmark = pytest.mark.slow

FINISH = 180_000  # ms: how long a browser wait may last before the test fails (not a speed bound)


def fill_basics(page, *, prompt: str = "a red apple", size: int = 64, steps: int = 1) -> None:
    page.fill("#prompt", prompt)
    page.fill("input[name=width]", str(size))
    page.fill("input[name=height]", str(size))
    page.fill("input[name=steps]", str(steps))


def job_id_of_result(page) -> str:
    return page.locator(".result[data-job]").get_attribute("data-job")


def wait_result(page, status: str = "completed") -> str:
    page.wait_for_selector(f".result[data-status={status}]", timeout=FINISH)
    return job_id_of_result(page)


def png_file(tmp_path: Path, image: Image.Image, name: str = "input.png") -> Path:
    path = tmp_path / name
    image.save(path)
    return path


def job_inputs(server: Server, job_id: str) -> Path:
    """The folder where the server saved a job's input images (from the job's stored row)."""
    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as db:
        (params,) = db.execute("SELECT params FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return server.data_dir / json.loads(params)["_inputs"]


def test_root_opens_the_ui_with_its_header(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    assert page.url.endswith("/ui/")
    header = page.locator(".app-header")
    header.get_by_text("worker ok").wait_for()
    header.locator(".model-pill", has_text="sd1").wait_for()  # the preloaded model, once loaded
    # Focus lands in the prompt: the screen is prompt first.
    assert page.evaluate("document.activeElement.id") == "prompt"
    screenshot(page, "create-empty")


def test_text_to_image_from_the_form_to_the_shown_image(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    fill_basics(page, prompt="a lighthouse at dusk", steps=2)
    page.fill("#negative_prompt", "blurry")
    page.click("button.generate")
    job_id = wait_result(page)
    image = page.locator(".result img.final")
    image.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth", image.element_handle()) == 64
    job = ui_server.get(f"/api/v1/generate/{job_id}").json()
    assert job["mode"] == "txt2img" and job["parameters"]["prompt"] == "a lighthouse at dusk"
    assert job["parameters"]["negative_prompt"] == "blurry" and job["parameters"]["steps"] == 2
    # The real seed is shown and the history lists the job.
    assert str(job["seeds"][0]) in page.locator(".result .meta").inner_text()
    screenshot(page, "create-result")
    page.click("a.nav[href='#queue']")
    page.wait_for_selector(f".gallery .card[data-job='{job_id}'] img")
    screenshot(page, "queue-history")


def test_form_values_persist_across_a_reload(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    fill_basics(page, prompt="kept after reload", size=128, steps=7)
    page.reload()
    page.wait_for_selector("#prompt")
    assert page.input_value("#prompt") == "kept after reload"
    assert page.input_value("input[name=width]") == "128" and page.input_value("input[name=steps]") == "7"


def test_api_errors_show_next_to_the_field_they_name(ui_server: Server, open_page) -> None:
    page, problems = open_page(ui_server)
    problems.allow("status of 422")  # the browser logs the refused request itself
    fill_basics(page, steps=1)
    page.fill("input[name=steps]", "0")
    page.click("button.generate")
    error = page.locator(".field[data-field=steps] .field-error")
    error.wait_for()
    assert "steps" in error.inner_text()
    assert page.locator(".result[data-job]").count() == 0  # nothing was queued
    # Fixing the field clears its error.
    page.fill("input[name=steps]", "1")
    assert page.locator(".field[data-field=steps] .field-error").count() == 0


def test_image_to_image_from_an_uploaded_file(ui_server: Server, open_page, tmp_path: Path) -> None:
    page, _ = open_page(ui_server)
    page.click("[data-mode=img2img]")
    fill_basics(page, prompt="an oil painting")
    assert page.locator("button.generate").is_disabled()
    assert "init image" in page.locator("#generate-why").inner_text()
    page.set_input_files("input[name=init_image-file]", str(png_file(tmp_path, sample_image(64, seed=5))))
    page.wait_for_selector(".image-input img")
    page.fill("input[name=strength]", "0.6")
    page.click("button.generate")
    job_id = wait_result(page)
    job = ui_server.get(f"/api/v1/generate/{job_id}").json()
    assert job["mode"] == "img2img" and job["parameters"]["strength"] == 0.6
    sent = Image.open(job_inputs(ui_server, job_id) / "init_image.png").convert("RGB")
    assert np.array_equal(np.asarray(sent), np.asarray(sample_image(64, seed=5)))
    screenshot(page, "img2img")


def test_inpainting_sends_the_mask_drawn_with_the_mouse(ui_server: Server, open_page, tmp_path: Path) -> None:
    page, _ = open_page(ui_server)
    page.click("[data-mode=inpaint]")
    fill_basics(page, prompt="a blue square")
    page.set_input_files("input[name=init_image-file]", str(png_file(tmp_path, sample_image(64, seed=2))))
    canvas = page.locator("canvas.mask-canvas")
    canvas.wait_for()
    assert "Paint a mask" in page.locator("#generate-why").inner_text()
    page.evaluate("document.activeElement.blur()")  # bare keys act only outside text fields
    for _ in range(6):  # brush 32 -> 8 image pixels with the [ shortcut
        page.keyboard.press("[")
    assert page.locator(".mask-editor .toolbar .mono").inner_text() == "8"
    canvas.evaluate("(el) => el.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"], "the whole canvas is visible"

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"] / 64, box["y"] + y * box["height"] / 64

    # Paint the top-left quadrant row by row: x and y from 4 to 28 with a brush 8 wide.
    for y in range(4, 29, 4):
        page.mouse.move(*at(4, y))
        page.mouse.down()
        page.mouse.move(*at(28, y), steps=6)
        page.mouse.up()
    page.wait_for_function("() => !document.querySelector('button.generate').disabled")
    screenshot(page, "inpaint-mask")
    page.click("button.generate")
    job_id = wait_result(page)
    mask = np.asarray(Image.open(job_inputs(ui_server, job_id) / "mask_image.png").convert("L"))
    assert mask.shape == (64, 64)  # sent at the image's resolution
    assert (mask[6:27, 6:27] == 255).all(), "the painted square is white"
    assert (mask[40:, :] == 0).all() and (mask[:, 40:] == 0).all(), "the rest is black"
    assert ui_server.get(f"/api/v1/generate/{job_id}").json()["mode"] == "inpaint"


def test_mask_editor_undo_clear_and_invert(ui_server: Server, open_page, tmp_path: Path) -> None:
    page, _ = open_page(ui_server)
    page.click("[data-mode=inpaint]")
    page.set_input_files("input[name=init_image-file]", str(png_file(tmp_path, sample_image(64))))
    canvas = page.locator("canvas.mask-canvas")
    canvas.wait_for()
    canvas.evaluate("(el) => el.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    painted = (
        "() => { const c = document.querySelector('canvas.mask-canvas'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4)"
        " n += d[i] >= 128; return n; }"
    )
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.up()
    dot = page.evaluate(painted)
    assert 0 < dot < 64 * 64
    page.get_by_role("button", name="Invert").click()
    assert page.evaluate(painted) == 64 * 64 - dot
    page.get_by_role("button", name="Undo").click()
    assert page.evaluate(painted) == dot
    page.get_by_role("button", name="Clear").click()
    assert page.evaluate(painted) == 0
    page.keyboard.press("Control+z")
    assert page.evaluate(painted) == dot


def test_upscale_from_an_uploaded_file(ui_server: Server, open_page, tmp_path: Path) -> None:
    page, _ = open_page(ui_server)
    page.click("[data-mode=upscale]")
    page.set_input_files("input[name=image-file]", str(png_file(tmp_path, sample_image(32))))
    page.select_option("select[name=upscaler]", "x4")
    page.click("button.generate")
    job_id = wait_result(page)
    job = ui_server.get(f"/api/v1/generate/{job_id}").json()
    assert job["mode"] == "upscale" and (job["images"][0]["width"], job["images"][0]["height"]) == (128, 128)
    screenshot(page, "upscale")


def test_cancel_a_running_job_from_the_queue_view(ui_server: Server, open_page) -> None:
    slow = ui_server.submit(**{**FAST, "width": 256, "height": 256, "steps": 30})
    ui_server.wait_job(slow["job_id"], until=("running",))
    page, _ = open_page(ui_server)
    page.click("a.nav[href='#queue']")
    row = page.locator(f".job-row[data-job='{slow['job_id']}']")
    row.wait_for()
    screenshot(page, "queue-running")
    row.get_by_role("button", name="Cancel job").click()
    row.wait_for(state="detached", timeout=FINISH)
    assert ui_server.get(f"/api/v1/generate/{slow['job_id']}").json()["status"] == "cancelled"


def test_a_reload_mid_job_reattaches_and_shows_it_finish(ui_server: Server, open_page) -> None:
    # A running job ahead keeps ours queued while the page reloads.
    blocker = ui_server.submit(**{**FAST, "width": 256, "height": 256, "steps": 30})
    ui_server.wait_job(blocker["job_id"], until=("running",))
    page, _ = open_page(ui_server)
    fill_basics(page, prompt="after the reload")
    page.click("button.generate")
    page.wait_for_selector(".result[data-status=queued]")
    job_id = job_id_of_result(page)
    page.reload()
    page.wait_for_selector(f".result[data-job='{job_id}'][data-status=queued]")
    assert "position 1" in page.locator(".result .progress-line").inner_text()
    ui_server.delete(f"/api/v1/generate/{blocker['job_id']}")
    page.wait_for_selector(f".result[data-job='{job_id}'][data-status=completed]", timeout=FINISH)
    page.locator(".result img.final").wait_for()


def test_model_load_from_the_models_view(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    page.click("a.nav[href='#models']")
    row = page.locator(".model-row[data-model='checkpoint/other.safetensors']")
    row.wait_for()
    screenshot(page, "models")
    row.get_by_role("button", name="Load other").click()
    page.locator(".app-header .model-pill", has_text="other").wait_for(timeout=FINISH)
    page.locator(".model-row.loaded[data-model='checkpoint/other.safetensors']").wait_for()
    assert ui_server.status()["loaded_model"] == "other"
    row.locator(".model-open").click()
    dialog = page.locator("dialog.model-details")
    dialog.wait_for()
    assert "sd1" in dialog.inner_text()  # the detected architecture
    screenshot(page, "model-details")
    dialog.get_by_role("button", name="Compute hashes").click()
    dialog.locator("dd.mono.wrap", has_text=re.compile("^[0-9a-f]{64}$")).wait_for()


def test_theme_switch_overrides_the_system_and_persists(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    theme = page.locator("button.theme")
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    while page.evaluate("document.documentElement.dataset.theme") != "dark":
        theme.click()
    dark = page.evaluate(background)
    assert dark != light
    screenshot(page, "create-dark")
    page.reload()
    page.wait_for_selector("#prompt")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate(background) == dark


def test_every_form_control_has_a_label(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server)
    for mode in ("txt2img", "img2img", "inpaint", "upscale"):
        page.click(f"[data-mode={mode}]")
        page.evaluate("document.querySelectorAll('details.group').forEach((d) => d.open = true)")
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)""")
        assert unlabeled == [], mode


def test_phone_layout_puts_the_result_first_and_has_a_tab_bar(ui_server: Server, open_page) -> None:
    page, _ = open_page(ui_server, viewport={"width": 390, "height": 844})
    page.wait_for_selector("#prompt")
    result_top = page.locator(".result-col").bounding_box()["y"]
    assert result_top < page.locator("#prompt").bounding_box()["y"]
    tab_bar = page.locator(".tab-bar")
    assert tab_bar.is_visible() and tab_bar.bounding_box()["y"] + tab_bar.bounding_box()["height"] <= 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows sideways
    tab_bar.get_by_role("button", name="Queue").click()
    page.wait_for_selector(".queue-view")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
