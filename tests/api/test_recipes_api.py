"""GET /api/v1/models/recipes on a real server, and an installed recipe used as one model name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from harness import link_models
from sdrest.models.recipes import find_recipe, load_recipes, write_preset
from sdrest.models.types import ModelFolders, ModelType
from server_helpers import FAST, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory) -> Iterator[Server]:
    """Models: the synthetic files (its taesd/taesd.safetensors is the taesd recipe's file), the
    SD1 checkpoint under the sd15 recipe's file name with the recipe's preset, and Flux's VAE only."""
    root = tmp_path_factory.mktemp("recipes")
    models_dir = link_models(models, root / "models")
    folders = ModelFolders.build(models_dir)
    sd15 = find_recipe("sd15")
    os.link(models.checkpoint, sd15.files[0].path(folders))
    write_preset(sd15, folders)
    flux_vae = next(f for f in find_recipe("flux1-schnell-q4").files if f.type is ModelType.VAE)
    flux_vae.path(folders).parent.mkdir(parents=True, exist_ok=True)
    flux_vae.path(folders).write_bytes(b"not a real VAE")
    # --model names the recipe, as `sdrest serve --pull sd15` leaves it: requests naming no model get it.
    started = Server(root, models_dir, "--model", "sd15").start()
    try:
        yield started
    finally:
        started.stop()


def test_the_listing_shows_every_recipe_and_what_is_installed(server: Server) -> None:
    response = server.get("/api/v1/models/recipes")
    assert response.status_code == 200, response.text
    listed = {r["name"]: r for r in response.json()["recipes"]}
    assert list(listed) == list(load_recipes())
    assert listed["sd15"]["installed"] and listed["sd15"]["missing_bytes"] == 0
    assert listed["taesd"]["installed"] and not listed["taesd"]["selectable"]
    assert not listed["sdxl-base"]["installed"]
    flux = listed["flux1-schnell-q4"]
    assert not flux["installed"]
    assert [(f["type"], f["installed"]) for f in flux["files"]] == [
        ("diffusion_model", False),
        ("text_encoder", False),
        ("text_encoder", False),
        ("vae", True),
    ]
    vae_size = next(f["size"] for f in flux["files"] if f["type"] == "vae")
    assert flux["missing_bytes"] == flux["size"] - vae_size
    assert flux["preset"]["diffusion_model"] == "flux1-schnell-q4_0.gguf"
    assert "--diffusion-model" in flux["sd_cli_flags"]


def test_the_listing_is_in_the_openapi_document(server: Server) -> None:
    document = server.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/models/recipes"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("RecipeList")


def test_an_installed_recipe_generates_as_one_model_name(server: Server) -> None:
    job = server.submit(model="sd15")
    done = server.wait_job(job["job_id"])
    assert done["status"] == "completed", done
    assert done["parameters"]["model"] == "v1-5-pruned-emaonly.safetensors"
    assert done["model"] == "v1-5-pruned-emaonly.safetensors"


def test_a_request_naming_no_model_gets_the_recipe_of_model_flag(server: Server) -> None:
    job = server.submit()  # no "model": --model sd15, a recipe's preset, not a checkpoint
    done = server.wait_job(job["job_id"])
    assert done["status"] == "completed", done
    assert done["parameters"]["model"] == "v1-5-pruned-emaonly.safetensors"
    other = server.wait_job(server.submit(model="sd1")["job_id"])  # a named checkpoint still wins
    assert other["status"] == "completed" and other["parameters"]["model"] == "sd1"


def test_a_recipe_not_installed_is_a_404_naming_model(server: Server) -> None:
    response = server.post("/api/v1/generate", json={**FAST, "model": "sdxl-base", "wait": False})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["field"] == "model"


def test_openai_lists_the_installed_recipe_and_generates_with_it(server: Server) -> None:
    listed = [m["id"] for m in server.get("/v1/models").json()["data"]]
    assert "sd15" in listed and "v1-5-pruned-emaonly" in listed and "sdxl-base" not in listed
    assert server.get("/v1/models/sd15").json()["id"] == "sd15"
    response = server.post(
        "/v1/images/generations",
        json={"prompt": "a red apple", "model": "sd15", "size": "64x64", "steps": 1, "sampler": "euler", "seed": 3},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 1


def test_a1111_lists_the_installed_recipe_and_generates_with_it(server: Server) -> None:
    models = {m["model_name"]: m for m in server.get("/sdapi/v1/sd-models").json()}
    assert models["sd15"]["filename"] == "presets/sd15.json" and "sdxl-base" not in models
    response = server.post(
        "/sdapi/v1/txt2img",
        json={
            "prompt": "a red apple",
            "width": 64,
            "height": 64,
            "steps": 1,
            "seed": 3,
            "override_settings": {"sd_model_checkpoint": "sd15"},
        },
    )
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["info"])["sd_model_name"] == "v1-5-pruned-emaonly.safetensors"
