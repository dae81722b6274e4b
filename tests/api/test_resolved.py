"""A finished job records what really ran: the model (also when the default ran), sampler,
scheduler, CFG scale and clip skip, with the library's defaults filled in; the image's A1111
infotext says the same, with the model's short hash."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from helpers import test_image
from server_helpers import FAST, Server, png_base64, sd1_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    yield from sd1_server(models, tmp_path_factory, "resolved")


@pytest.fixture(scope="module")
def short_hash(models) -> str:
    """A1111's "Model hash": the first 10 hex digits of the file's sha256."""
    digest = hashlib.sha256()
    with open(models.checkpoint, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


def _infotext(server: Server, job: dict) -> tuple[str, list[str]]:
    """The PNG's "parameters" text chunk: (prompt lines, the settings as "Key: value" items)."""
    image = Image.open(io.BytesIO(server.get(job["images"][0]["url"]).content))
    *prompt, settings = image.text["parameters"].split("\n")
    return "\n".join(prompt), settings.split(", ")


def test_defaults_are_recorded_as_the_values_that_applied(server: Server, short_hash: str) -> None:
    body = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 1, "seed": 3}  # nothing else named
    job = server.post("/api/v1/generate", json=body).json()
    assert job["status"] == "completed" and job["parameters"].get("model") is None
    # SD1: the library's default sampler is euler_a with the discrete schedule, CFG 7, and its
    # CLIP skips no layer (stable-diffusion.cpp: sd_get_default_*, sd_img_gen_params_init, conditioner).
    expected = {
        "model": "sd1",
        "model_hash": short_hash,
        "sampler": "euler_a",
        "scheduler": "discrete",
        "cfg_scale": 7.0,
        "clip_skip": 1,
    }
    assert job["resolved"] == expected
    assert job["model"] == "sd1"
    parameters = job["images"][0]["parameters"]
    assert {k: parameters[k] for k in expected} == expected and parameters["seed"] == 3
    prompt, settings = _infotext(server, job)
    assert prompt == "a red apple"
    assert settings == [
        "Steps: 1",
        "Sampler: Euler a",
        "Schedule type: Discrete",
        "CFG scale: 7",
        "Seed: 3",
        "Size: 64x64",
        f"Model hash: {short_hash}",
        "Model: sd1",
        settings[-1],
    ]
    assert settings[-1].startswith("Version: sdrest ")


def test_named_values_are_recorded_and_written(server: Server, short_hash: str) -> None:
    job = server.post(
        "/api/v1/generate/img2img",
        json={
            **FAST,
            "init_image": png_base64(test_image(64)),
            "model": "sd1",
            "sampler": "euler",
            "scheduler": "karras",
            "cfg_scale": 4.5,
            "clip_skip": 2,
            "strength": 0.6,
            "negative_prompt": "blurry",
            "wait": True,
        },
    ).json()
    assert job["resolved"] == {
        "model": "sd1",
        "model_hash": short_hash,
        "sampler": "euler",
        "scheduler": "karras",
        "cfg_scale": 4.5,
        "clip_skip": 2,
    }
    prompt, settings = _infotext(server, job)
    assert prompt == "a red apple\nNegative prompt: blurry"
    assert settings[:10] == [
        "Steps: 1",
        "Sampler: Euler",
        "Schedule type: Karras",
        "CFG scale: 4.5",
        "Seed: 3",
        "Size: 64x64",
        f"Model hash: {short_hash}",
        "Model: sd1",
        "Denoising strength: 0.6",
        "Clip skip: 2",
    ]


def test_queued_jobs_and_upscales_have_nothing_resolved(server: Server) -> None:
    queued = server.submit(steps=30, seed=9)
    assert queued["resolved"] is None
    server.delete(f"/api/v1/generate/{queued['job_id']}")
    upscaled = server.post(
        "/api/v1/upscale", json={"image": png_base64(test_image(32)), "upscaler": "x4", "wait": True}
    ).json()
    assert upscaled["status"] == "completed" and upscaled["resolved"] is None and upscaled["model"] == "x4"
