"""``sdrest pull`` and ``sdrest serve --pull`` as real processes against the local hub stand-in
(tests/hubs.py, pointed at with --hf-endpoint / HF_ENDPOINT): files land in their typed folder,
progress is shown, recipes are listed with what is installed, bad input exits 2 naming it."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from hubs import Hubs, hubs

from harness import sdrest_command
from sdrest.models.recipes import find_recipe
from sdrest.models.types import ModelFolders
from sdrest.pull import with_pulled_model
from sdrest.settings import Settings
from server_helpers import Server

__all__ = ["hubs"]

TAESD_REPO, TAESD_PATH = "madebyollin/taesd", "diffusion_pytorch_model.safetensors"  # the taesd recipe's source


def pull(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SDREST_", "HF_"))}
    return subprocess.run(
        [*sdrest_command("pull"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
        check=False,
    )


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


@pytest.fixture
def taesd_bytes(models) -> bytes:
    return Path(models.taesd).read_bytes()


def test_a_source_lands_in_its_folder_with_progress(hubs: Hubs, taesd_bytes: bytes, tmp_path: Path) -> None:
    hubs.add_hf_file("someone/tiny-vae", "sub/tiny.safetensors", taesd_bytes)
    models_dir = tmp_path / "models"
    done = pull(
        "hf:someone/tiny-vae/sub/tiny.safetensors", "--type", "taesd", "--models-dir", str(models_dir), *hubs.args()
    )
    assert done.returncode == 0, done.stderr
    placed = models_dir / "taesd" / "tiny.safetensors"
    assert placed.read_bytes() == taesd_bytes
    sha = hashlib.sha256(taesd_bytes).hexdigest()
    assert f"installed taesd/tiny.safetensors ({len(taesd_bytes)} bytes, sha256 {sha})" in done.stdout
    assert "tiny.safetensors: 100%" in done.stderr  # the progress bar, finished
    assert [p.name for p in placed.parent.iterdir()] == ["tiny.safetensors"]  # no partial file left


def test_a_recipe_through_hf_endpoint_then_listed_as_installed(hubs: Hubs, taesd_bytes: bytes, tmp_path: Path) -> None:
    hubs.add_hf_file(TAESD_REPO, TAESD_PATH, taesd_bytes)
    models_dir = tmp_path / "models"
    done = pull("taesd", "--models-dir", str(models_dir), env={"HF_ENDPOINT": hubs.hf_endpoint})
    assert done.returncode == 0, done.stderr
    assert (models_dir / "taesd" / "taesd.safetensors").read_bytes() == taesd_bytes  # the recipe's own name
    assert "taesd is installed" in done.stdout
    listing = pull("--list", "--models-dir", str(models_dir)).stdout.splitlines()
    row = next(columns(line) for line in listing if line.startswith("taesd "))
    assert row[3] == "yes"
    again = pull("taesd", "--models-dir", str(models_dir), env={"HF_ENDPOINT": hubs.hf_endpoint})
    assert again.returncode == 0 and "already there: taesd/taesd.safetensors" in again.stdout
    assert len(hubs.requests_to("cdn", "GET")) == 1  # nothing downloaded the second time


def test_the_listing_shows_sizes_and_partly_installed_recipes(tmp_path: Path) -> None:
    folders = ModelFolders.build(tmp_path / "models")
    flux = find_recipe("flux1-schnell-q4")
    vae = next(f for f in flux.files if f.field == "vae")
    vae.path(folders).parent.mkdir(parents=True)
    vae.path(folders).write_bytes(b"x")
    done = pull("--list", "--models-dir", str(folders.models_dir))
    assert done.returncode == 0, done.stderr
    header, *lines = [columns(line) for line in done.stdout.splitlines()]
    assert header == ["RECIPE", "SIZE", "MEMORY", "INSTALLED", "TITLE"]
    rows = {row[0]: row for row in lines}
    assert rows["flux1-schnell-q4"][1:4] == ["11.4 GiB", "11.7 GiB", "1 of 4 files"]
    assert rows["z-image-turbo"][3] == "1 of 3 files"  # the same ae.safetensors
    assert rows["sd15"][3] == "no"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["flux3"], "unknown recipe 'flux3'"),
        (["hf:onlyowner"], "hf:onlyowner"),
        (["hf:someone/repo/x.safetensors", "--type", "weights"], "--type: unknown model type 'weights'"),
        (["taesd", "--type", "vae"], "recipe 'taesd'"),
        ([], "name a SOURCE or a RECIPE"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(args: list[str], named: str, tmp_path: Path) -> None:
    done = pull(*args, "--models-dir", str(tmp_path / "models"), "--hf-endpoint", "http://127.0.0.1:9")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert named in done.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.*"))


def test_a_hub_error_exits_1_naming_the_file(hubs: Hubs, tmp_path: Path) -> None:
    done = pull("hf:someone/missing/x.safetensors", "--models-dir", str(tmp_path / "models"), *hubs.args())
    assert done.returncode == 1, done.stderr
    assert "hf:someone/missing/x.safetensors" in done.stderr


def test_serve_pull_fetches_what_is_missing_before_serving(hubs: Hubs, taesd_bytes: bytes, tmp_path: Path) -> None:
    hubs.add_hf_file(TAESD_REPO, TAESD_PATH, taesd_bytes)
    server = Server(tmp_path, tmp_path / "models", "--pull", "taesd", *hubs.args()).start()
    try:
        assert (tmp_path / "models" / "taesd" / "taesd.safetensors").read_bytes() == taesd_bytes
        listed = server.get("/api/v1/models/recipes").json()["recipes"]
        assert next(r for r in listed if r["name"] == "taesd")["installed"]
    finally:
        server.stop()


def test_serve_pull_of_an_unknown_recipe_exits_2_before_serving(tmp_path: Path) -> None:
    done = subprocess.run(
        [*sdrest_command("serve"), "--pull", "flux3", "--models-dir", str(tmp_path / "m"), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "--pull: unknown recipe 'flux3'" in done.stderr


def test_serve_pull_makes_the_last_model_recipe_the_default_model() -> None:
    assert with_pulled_model(Settings(), ["taesd", "sd15", "taef1"]).model == "sd15"  # helpers bind nothing
    assert with_pulled_model(Settings(), ["taesd"]).model is None
    assert with_pulled_model(Settings(model="mine"), ["sd15"]).model == "mine"  # --model wins
