"""The video table reaches the C struct: every row of VIDEO_FIELDS, given a value, is read back
from the sd_vid_gen_params_t the binding builds for the native generate_video call."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from helpers import EVERY_SAMPLING_OPTION, EVERY_VAE_TILING_OPTION, every_cache_option, field_at
from sdrest._native import ffi
from sdrest.api.schemas.video import VideoRequest
from sdrest.engine.structs import Arena, struct_to_dict
from sdrest.jobs.video import VIDEO_FIELDS
from sdrest.worker.mapping import flatten
from sdrest.worker.video import video_params

INPUT_SIZES = {"init.png": (64, 48), "end.png": (64, 40), "c0.png": (24, 16), "c1.png": (16, 24), "c2.png": (32, 8)}


def job_params(lora: Path) -> dict:
    """A stored video job with every VIDEO_FIELDS row set to a value no default has."""
    return {
        "mode": "video",
        "prompt": "a boat",
        "negative_prompt": "a car",
        "width": 64,
        "height": 72,
        "seed": 77,
        "clip_skip": 2,
        "strength": 0.4,
        "loras": [
            {"name": "l", "weight": 0.25, "path": str(lora)},
            {"name": "h", "weight": 0.5, "path": str(lora), "high_noise": True},
        ],
        "init_image": "init.png",
        "end_image": "end.png",
        "control_video": ["c0.png", "c1.png", "c2.png"],
        "video_frames": 9,
        "fps": 12,
        "moe_boundary": 0.6,
        "vace_strength": 0.7,
        **EVERY_SAMPLING_OPTION,
        "high_noise_steps": 4,
        "high_noise_sampler": "euler",
        "high_noise_scheduler": "simple",
        "high_noise_eta": 0.25,
        "high_noise_flow_shift": 3.5,
        "high_noise_timestep_shift": 100,
        "high_noise_sigmas": [9.0, 1.0, 0.0],
        "high_noise_cfg_scale": 3.5,
        "high_noise_img_cfg_scale": 1.25,
        "high_noise_guidance": 4.5,
        "high_noise_slg": {"layers": [3], "start": 0.1, "end": 0.4, "scale": 1.5},
        "vae_tiling": EVERY_VAE_TILING_OPTION,
        "cache": every_cache_option("easycache"),
    }


@pytest.fixture
def built(native, models, tmp_path):
    params = job_params(Path(models.lora))
    for name, size in INPUT_SIZES.items():
        Image.new("RGB", size, (10, 20, 30)).save(tmp_path / name)
    video = video_params(params, lambda relative: tmp_path / relative)
    c_params = ffi.new("sd_vid_gen_params_t *")
    native.lib.sd_vid_gen_params_init(c_params)
    arena = Arena()
    video.fill(c_params, native.lib, arena)
    return params, c_params, struct_to_dict(c_params, native.lib), arena


def test_every_row_is_a_request_field() -> None:
    """(That every C field has a row: tests/api/test_struct_walk.py.)"""
    for key in VIDEO_FIELDS:
        model: Any = VideoRequest
        for part in key.split("."):
            assert model is not None and part in model.model_fields, key
            field = model.model_fields[part]
            inner = [a for a in getattr(field.annotation, "__args__", ()) if hasattr(a, "model_fields")]
            model = inner[0] if inner else None


def test_the_sample_job_sets_every_row_of_the_table(built) -> None:
    params, *_ = built
    assert set(VIDEO_FIELDS) <= {key for key, _ in flatten(params)}
    VideoRequest(
        **{k: v for k, v in params.items() if k not in ("mode", "init_image", "end_image", "control_video", "loras")}
    )


def test_every_video_field_reaches_the_c_struct(built) -> None:
    params, c_params, got, _arena = built
    flat = dict(flatten(params))

    def at(path: str):
        return field_at(got, path)

    assert c_params.loras[0].multiplier == 0.25 and at("lora_count") == 2
    assert (c_params.loras[0].is_high_noise, c_params.loras[1].is_high_noise) == (False, True)
    assert ffi.string(c_params.loras[0].path) == params["loras"][0]["path"].encode()
    assert (at("init_image")["width"], at("init_image")["height"]) == (64, 48)
    assert (at("end_image")["width"], at("end_image")["height"]) == (64, 40)
    assert at("control_frames_size") == 3
    assert [(c_params.control_frames[i].width, c_params.control_frames[i].height) for i in range(3)] == [
        (24, 16),
        (16, 24),
        (32, 8),
    ]
    for prefix, sampler, scheduler, sigmas, layers in (
        ("sample_params", "dpm++2m", "karras", [14.6, 3.0, 0.0], [7, 8]),
        ("high_noise_sample_params", "euler", "simple", [9.0, 1.0, 0.0], [3]),
    ):
        assert (at(f"{prefix}.sample_method"), at(f"{prefix}.scheduler")) == (sampler, scheduler)
        struct = getattr(c_params, prefix)
        assert [struct.custom_sigmas[i] for i in range(struct.custom_sigmas_count)] == pytest.approx(sigmas)
        assert [struct.guidance.slg.layers[i] for i in range(struct.guidance.slg.layer_count)] == layers
    assert at("vae_tiling_params.enabled") is True and at("cache.mode") == "easycache"
    special = {
        "sampler",
        "scheduler",
        "sigmas",
        "slg.layers",
        "high_noise_sampler",
        "high_noise_scheduler",
        "high_noise_sigmas",
        "high_noise_slg.layers",
        "vae_tiling",
        "cache.mode",
        "loras",
        "init_image",
        "end_image",
        "control_video",
        "vae_tiling.tile_size",
    }
    for key, targets in VIDEO_FIELDS.items():
        if key in special:
            continue
        for target in (targets,) if isinstance(targets, str) else targets:
            value = at(target)
            assert math.isclose(value, flat[key], rel_tol=1e-6) if isinstance(value, float) else value == flat[key], key
    assert (at("vae_tiling_params.tile_size_x"), at("vae_tiling_params.tile_size_y")) == (32, 40)
