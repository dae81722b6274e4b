"""The "Get models" view and Create's empty state in a real browser (issue 20): a real server with
an empty models folder, its download lane and the hub stand-in (tests/hubs.py) serving a recipe's
file; install from the empty state, watch the progress, generate with the installed recipe."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubs import Faults, Hubs, StoredFile

from sdrest.models.recipes import find_recipe
from sdrest.synthetic import SyntheticModels
from server_helpers import Server
from webui_helpers import screenshot

pytestmark = pytest.mark.slow

FINISH = 180_000  # ms: how long a browser wait may last before the test fails (not a speed bound)
RECIPE = "sd-turbo"  # one checkpoint file and no catalogue hash: the stand-in serves the synthetic SD1 one
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Hubs]:
    with Hubs() as hubs:
        yield hubs


@pytest.fixture(scope="module")
def recipe_file(stand_in: Hubs, models: SyntheticModels) -> StoredFile:
    """The recipe's file on the hub (the synthetic checkpoint's bytes), stalled halfway until the
    test releases it, so the progress is seen while it runs."""
    [item] = find_recipe(RECIPE).files
    repo_and_path, revision = item.source.removeprefix("hf:").rsplit("@", 1)
    owner, name, path = repo_and_path.split("/", 2)
    data = models.checkpoint.read_bytes()
    return stand_in.add_hf_file(
        f"{owner}/{name}", path, data, revision=revision, faults=Faults(hold_after=len(data) // 2)
    )


@pytest.fixture(scope="module")
def server(stand_in: Hubs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Auth off (the browser is an admin), no model at all: what a fresh install looks like."""
    root = tmp_path_factory.mktemp("getmodels")
    (root / "models").mkdir()
    started = Server(root, root / "models", *stand_in.args()).start()
    try:
        yield started
    finally:
        started.stop()


def fitting_recipes(server: Server) -> list[str]:
    """The rule the empty state states: model recipes not installed whose memory fits the largest
    GPU, else the RAM, in catalogue order, at most three."""
    system = server.get("/api/v1/system").json()
    gpus = [d["memory"]["total"] for d in system["gpu"]["devices"]] if system["gpu"]["present"] else []
    memory = max(gpus) if gpus else system["memory"]["total"]
    recipes = server.get("/api/v1/models/recipes").json()["recipes"]
    return [r["name"] for r in recipes if r["selectable"] and not r["installed"] and r["memory_mb"] * MIB <= memory][:3]


def test_install_a_recipe_from_the_empty_state_watch_it_and_generate_with_it(
    server: Server, recipe_file: StoredFile, open_page
) -> None:
    page, _ = open_page(server)
    empty = page.locator(".empty-models")
    empty.wait_for()
    page.locator("#generate-why", has_text="No model is installed yet").wait_for()
    offered = fitting_recipes(server)
    assert RECIPE in offered, f"this machine's memory fits only {offered}"
    page.wait_for_function(
        "(n) => document.querySelectorAll('.empty-models .recipe-picks > li').length === n", arg=len(offered)
    )
    assert empty.locator(".recipe-picks > li").evaluate_all("els => els.map(e => e.dataset.recipe)") == offered
    screenshot(page, "create-no-model")

    pick = empty.locator(f".recipe-picks > li[data-recipe='{RECIPE}']")
    pick.get_by_role("button", name="Install").click()
    # Held halfway by the hub: the bar shows the bytes that arrived, live from the event stream.
    bar = pick.locator(".download[data-status=downloading] [role=progressbar]")
    bar.wait_for(timeout=FINISH)
    page.wait_for_function(
        "() => Number(document.querySelector('.empty-models [role=progressbar]')?.getAttribute('aria-valuenow')) > 0",
        timeout=FINISH,
    )
    assert int(bar.get_attribute("aria-valuenow")) <= 50
    page.locator(".empty-models .download").get_by_role("button", name="Cancel the download").wait_for()
    recipe_file.faults.release.set()

    # Completed: the empty state goes, the recipe is one model name in the checkpoint list.
    empty.wait_for(state="detached", timeout=FINISH)
    page.locator("details[data-group=model] > summary").click()
    page.wait_for_selector(f"select[name=model] option[value='{RECIPE}']", state="attached")
    page.select_option("select[name=model]", RECIPE)
    page.fill("#prompt", "a red apple")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=steps]", "1")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector(".result[data-status=completed]", timeout=FINISH)
    job_id = page.locator(".result[data-job]").get_attribute("data-job")
    job = server.get(f"/api/v1/generate/{job_id}").json()
    assert job["status"] == "completed"
    assert job["parameters"]["model"] == "sd_turbo.safetensors"
    [download] = server.get("/api/v1/models/downloads").json()["downloads"]
    assert download["recipe"] == RECIPE and download["status"] == "completed"
    assert (server.models_dir / "checkpoints" / "sd_turbo.safetensors").stat().st_size == len(recipe_file.data)


def test_get_models_lists_every_recipe_and_names_a_bad_sources_field(server: Server, open_page) -> None:
    page, problems = open_page(server)
    problems.allow("status of 422")  # the browser's own log of the refused source
    page.get_by_role("link", name="Models").first.click()
    page.get_by_role("tab", name="Get models").click()
    recipes = server.get("/api/v1/models/recipes").json()["recipes"]
    page.wait_for_function(
        "(n) => document.querySelectorAll('.recipe-card').length === n", arg=len(recipes), timeout=FINISH
    )
    names = page.locator(".recipe-card").evaluate_all("els => els.map(e => e.dataset.recipe)")
    assert sorted(names) == sorted(r["name"] for r in recipes)
    page.locator(".get-models", has_text="This machine:").wait_for()

    page.fill("#download-source", "hf:only-a-repo")
    page.get_by_role("button", name="Download", exact=True).click()
    error = page.locator("[data-field=source] .field-error")
    error.wait_for()
    answer = server.post("/api/v1/models/downloads", json={"source": "hf:only-a-repo"}).json()["error"]
    assert answer["field"] == "source"
    assert error.inner_text() == answer["message"]
    screenshot(page, "get-models")
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
    screenshot(page, "get-models-dark")


def test_cancel_a_download_from_the_view_removes_its_partial_file(
    server: Server, stand_in: Hubs, models: SyntheticModels, open_page
) -> None:
    data = models.taesd.read_bytes()
    stored = stand_in.add_hf_file("owner/slow", "slow.safetensors", data, faults=Faults(hold_after=len(data) // 3))
    page, _ = open_page(server)
    page.get_by_role("link", name="Models").first.click()
    page.get_by_role("tab", name="Get models").click()
    page.fill("#download-source", "hf:owner/slow/slow.safetensors")
    page.select_option("#download-type", "taesd")
    page.get_by_role("button", name="Download", exact=True).click()
    started = page.locator(".downloads .download[data-status=downloading]", has_text="hf:owner/slow/slow.safetensors")
    started.wait_for(timeout=FINISH)
    row_id = started.get_attribute("data-download")
    row = page.locator(f".downloads .download[data-download='{row_id}']")
    # The bytes that arrived before the hub stalled show in the bar, live from the event stream.
    page.wait_for_function(
        "(id) => Number(document.querySelector(`.download[data-download='${id}'] [role=progressbar]`)"
        "?.getAttribute('aria-valuenow')) > 0",
        arg=row_id,
        timeout=FINISH,
    )
    row.get_by_role("button", name="Cancel the download").click()
    page.locator(f".downloads .download[data-download='{row_id}'][data-status=cancelled]").wait_for(timeout=FINISH)
    stored.faults.release.set()
    # The lane sees the cancel once the hub sends again, then removes the partial file.
    folder: Path = server.models_dir / "taesd"
    deadline = time.monotonic() + 60
    while folder.exists() and any(folder.iterdir()):
        assert time.monotonic() < deadline, f"left behind: {sorted(p.name for p in folder.iterdir())}"
        time.sleep(0.05)
    assert server.get(f"/api/v1/models/downloads/{row_id}").json()["status"] == "cancelled"
