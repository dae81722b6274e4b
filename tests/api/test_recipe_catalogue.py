"""An operator's own recipe catalogue (--recipes): a recipe of three files pulled through the API
from the hub stand-in, then one model name that generates with all three."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from hubs import Hubs

from harness import sdrest_command
from server_helpers import Server

pytestmark = pytest.mark.slow

REPO = "sdrest-tests/sd1-split"
RECIPE = {
    "name": "sd1-three",
    "title": "SD1 as three files",
    "family": "sd1",
    "license": "test",
    "memory_mb": 2048,
    "files": [
        {"source": f"hf:{REPO}/unet/sd1.safetensors", "type": "checkpoint", "field": "model"},
        {"source": f"hf:{REPO}/vae/sd1_vae.safetensors", "type": "vae", "field": "vae"},
        {"source": f"hf:{REPO}/tae/sd1_taesd.safetensors", "type": "taesd", "field": "taesd"},
    ],
    "preset": {"steps": 1, "cfg_scale": 1.0},
    "sd_cli": ["-m", "sd1.safetensors", "--vae", "sd1_vae.safetensors", "--taesd", "sd1_taesd.safetensors"],
}


def test_a_three_file_recipe_pulled_through_the_api_then_generates(models, tmp_path: Path) -> None:
    catalogue = tmp_path / "recipes.yaml"
    catalogue.write_text(yaml.safe_dump([RECIPE]))
    (tmp_path / "models").mkdir()
    with Hubs() as hubs:
        for path, source in (
            ("unet/sd1.safetensors", models.checkpoint),
            ("vae/sd1_vae.safetensors", models.vae),
            ("tae/sd1_taesd.safetensors", models.taesd),
        ):
            hubs.add_hf_file(REPO, path, source.read_bytes())
        server = Server(tmp_path, tmp_path / "models", "--recipes", str(catalogue), *hubs.args()).start()
        try:
            listed = {r["name"]: r for r in server.get("/api/v1/models/recipes").json()["recipes"]}
            assert not listed["sd1-three"]["installed"] and "sd15" in listed  # beside the shipped ones
            started = server.post("/api/v1/models/downloads", json={"recipe": "sd1-three"})
            assert started.status_code == 202, started.text
            download = started.json()
            deadline = time.monotonic() + 300
            while download["status"] not in ("completed", "failed", "cancelled"):
                assert time.monotonic() < deadline, download
                time.sleep(0.2)
                download = server.get(f"/api/v1/models/downloads/{download['id']}").json()
            assert download["status"] == "completed", download
            assert sorted(f["name"] for f in download["files"]) == [
                "sd1.safetensors",
                "sd1_taesd.safetensors",
                "sd1_vae.safetensors",
            ]
            assert sorted(r.path.rsplit("/", 1)[-1] for r in hubs.requests_to("cdn", "GET")) == [
                "sd1.safetensors",
                "sd1_taesd.safetensors",
                "sd1_vae.safetensors",
            ]  # each file fetched once
            for folder, name in (("checkpoints", "sd1.safetensors"), ("vae", "sd1_vae.safetensors")):
                assert (tmp_path / "models" / folder / name).read_bytes() == (
                    models.checkpoint if folder == "checkpoints" else models.vae
                ).read_bytes()
            assert server.get("/api/v1/models/recipes").json()["recipes"][-1]["installed"]

            job = server.post(
                "/api/v1/generate",
                json={"model": "sd1-three", "prompt": "a lighthouse", "width": 64, "height": 64, "seed": 5},
            ).json()
            assert job["status"] == "completed", job
            parameters = job["parameters"]
            assert parameters["model"] == "sd1.safetensors" and parameters["steps"] == 1  # the preset's
            assert len(job["images"]) == 1
        finally:
            server.stop()


def test_a_broken_catalogue_stops_the_server_naming_it(tmp_path: Path) -> None:
    for text, problem in (
        ("- name: x\n", "[0]: files missing"),
        (yaml.safe_dump([{**RECIPE, "name": "sd15"}]), "shipped recipe"),
        ("{not: a list}", "a list of recipes expected"),
    ):
        catalogue = tmp_path / "recipes.yaml"
        catalogue.write_text(text)
        result = subprocess.run(
            [*sdrest_command("serve"), "--recipes", str(catalogue), "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2 and "--recipes" in result.stderr and problem in result.stderr, result.stderr
