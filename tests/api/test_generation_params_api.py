"""The sd-cli parameters added to the generation API, through a real server: bad values are a
4xx naming the field (and queue nothing), and real 64x64 one-step runs show their effect."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers import test_image
from server_helpers import FAST, Server, png_base64, sd1_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    yield from sd1_server(models, tmp_path_factory, "genparams", "--max-loaded-models", "2")


def _image(server: Server, job: dict, index: int = 0) -> Image.Image:
    response = server.get(job["images"][index]["url"])
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"sigmas": [1.0]}, 422, "sigmas"),
        ({"sigmas": [1.0, "x"]}, 422, "sigmas[1]"),
        ({"timestep_shift": 1001}, 422, "timestep_shift"),
        ({"cache": {"mode": "fastest"}}, 422, "cache.mode"),
        ({"cache": {"reuse_threshold": 0.2}}, 422, "cache.mode"),
        ({"cache": {"mode": "cache_dit", "scm_mask": "1,2"}}, 422, "cache.scm_mask"),
        ({"cache": {"mode": "easycache", "speed": 2}}, 400, "cache.speed"),
        ({"rng": "mt19937"}, 422, "rng"),
        ({"sampler_rng": 1}, 422, "sampler_rng"),
        ({"prediction": "x0"}, 422, "prediction"),
        ({"lora_apply_mode": "later"}, 422, "lora_apply_mode"),
        ({"max_vram": -1}, 422, "max_vram"),
        ({"tensor_type_rules": "no rule"}, 422, "tensor_type_rules"),
        ({"chroma_t5_mask_pad": -1}, 422, "chroma_t5_mask_pad"),
        ({"mmap": "yes"}, 422, "mmap"),
        ({"vae_tiling": {"rel_size_x": 0}}, 422, "vae_tiling.rel_size_x"),
        ({"hires": {"upscaler": "Model"}}, 422, "hires.model"),
        ({"hires": {"model": "nope"}}, 404, "hires.model"),
        ({"hires": {"model": "../x4"}}, 400, "hires.model"),
        ({"upscale_model": "nope"}, 404, "upscale_model"),
        ({"upscale_model": "x4", "upscale_repeats": 4}, 422, "upscale_repeats"),
        ({"upscale_repeats": 5}, 422, "upscale_repeats"),
        ({"upscale_tile_size": 8}, 422, "upscale_tile_size"),
        ({"canny": True}, 422, "control_image"),
        ({"pm_style_strength": 30, "pm_id_embed": "x4"}, 422, "photo_maker"),
        ({"pm_id_images": [png_base64(test_image(16, 16))]}, 422, "photo_maker"),
        ({"photo_maker": "nope"}, 404, "photo_maker"),
        ({"clip_vision": "nope"}, 404, "clip_vision"),
        ({"llm_vision": "nope"}, 404, "llm_vision"),
        ({"image_metadata": "no"}, 422, "image_metadata"),
    ],
)
def test_bad_values_name_their_field_and_queue_nothing(server: Server, fields, status, field) -> None:
    before = server.get("/api/v1/queue").json()["total"]
    response = server.post("/api/v1/generate", json={**FAST, **fields})
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    assert server.get("/api/v1/queue").json()["total"] == before


def test_upscale_model_without_metadata_with_cache_and_sigmas(server: Server) -> None:
    control = png_base64(test_image(64, 64))
    job = server.submit(
        wait=True,
        upscale_model="x4",
        upscale_tile_size=32,
        image_metadata=False,
        canny=True,
        control_image=control,
        cache={"mode": "easycache", "reuse_threshold": 0.2},
        sigmas=[14.6, 0.0],
    )
    assert job["status"] == "completed", job.get("error")
    assert "upscaling" in job["timings"]
    image = _image(server, job)
    assert image.size == (256, 256) and np.asarray(image).std() > 1  # the x4 ESRGAN ran after generating
    assert "parameters" not in image.info and "sdrest" not in image.info  # no metadata in the file
    shown = job["parameters"]
    assert shown["upscale_model"] == "x4" and "upscale_model_path" not in shown
    assert shown["cache"] == {"mode": "easycache", "reuse_threshold": 0.2} and shown["sigmas"] == [14.6, 0.0]


def test_hires_with_a_model_upscaler(server: Server) -> None:
    job = server.submit(wait=True, hires={"model": "x4", "scale": 2, "steps": 1, "upscale_tile_size": 32})
    assert job["status"] == "completed", job.get("error")
    assert _image(server, job).size == (128, 128)
    assert job["parameters"]["hires"] == {
        "model": "x4",
        "upscaler": "Model",
        "scale": 2,
        "steps": 1,
        "upscale_tile_size": 32,
    }


def test_a_context_option_loads_its_own_context_and_reaches_the_library(server: Server) -> None:
    plain = server.submit(wait=True, seed=21)
    cpu_rng = server.submit(wait=True, seed=21, rng="cpu")
    cuda_rng = server.submit(wait=True, seed=21, rng="cuda")  # the library's default, named
    assert cpu_rng["parameters"]["model_options"] == {"rng_type": "cpu"}
    first, second, third = (np.asarray(_image(server, job)) for job in (plain, cpu_rng, cuda_rng))
    assert not (first == second).all()  # the cpu generator drew other noise
    assert (first == third).all()  # the default generator, asked for by name: the same image
    resident = server.status()["resident_models"]
    assert sorted(entry["options"].get("rng_type", "") for entry in resident) == ["cpu", "cuda"]


def test_objects_and_lists_as_form_text(server: Server) -> None:
    form = {**{k: str(v) for k, v in FAST.items()}, "cache": '{"mode": "fastest"}', "sigmas": "[1.0, 0.0]"}
    response = server.post("/api/v1/generate", data=form)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "cache.mode"  # the sigmas text parsed; the cache mode did not
