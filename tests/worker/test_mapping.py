"""The job-parameter tables reach the C structs: every row of IMAGE_FIELDS and MODEL_OPTIONS,
given a value, is read back from the struct the binding builds for the native call."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from helpers import EVERY_SAMPLING_OPTION, EVERY_VAE_TILING_OPTION, every_cache_option, field_at
from sdrest._native import ffi
from sdrest.api.schemas.generation import MODEL_COMPONENTS, MODEL_OPTIONS, GenerationRequest
from sdrest.engine.structs import Arena, struct_to_dict
from sdrest.jobs.engine_fields import IMAGE_FIELDS
from sdrest.worker.mapping import context_params, flatten, image_gen_params

#: Saved input images by stored path: each a different size, so the struct shows which one landed.
INPUT_SIZES = {
    "init.png": (64, 48),
    "mask.png": (64, 40),
    "control.png": (64, 32),
    "ref0.png": (24, 16),
    "ref1.png": (16, 24),
    "id0.png": (40, 40),
}


def job_params(esrgan: Path, lora: Path) -> dict:
    """A stored job with every IMAGE_FIELDS row set to a value no default has."""
    return {
        "mode": "img2img",
        "prompt": "a cat",
        "negative_prompt": "a dog",
        "width": 64,
        "height": 48,
        "seed": 77,
        "batch_count": 2,
        "clip_skip": 2,
        "strength": 0.4,
        "loras": [{"name": "l", "weight": 0.25, "path": str(lora)}],
        "init_image": "init.png",
        "mask_image": "mask.png",
        "control_image": "control.png",
        "control_strength": 0.3,
        "ref_images": ["ref0.png", "ref1.png"],
        "auto_resize_ref_image": True,
        "increase_ref_index": True,
        **EVERY_SAMPLING_OPTION,
        "hires": {
            "upscaler": "Model",
            "model": "x4",
            "model_path": str(esrgan),
            "scale": 1.5,
            "width": 96,
            "height": 72,
            "steps": 4,
            "denoising_strength": 0.45,
            "upscale_tile_size": 64,
        },
        "vae_tiling": EVERY_VAE_TILING_OPTION,
        "pm_id_images": ["id0.png"],
        "pm_id_embed_path": str(esrgan),
        "pm_style_strength": 35.0,
        "cache": every_cache_option("ucache"),
    }


@pytest.fixture
def built(native, models, tmp_path):
    params = job_params(Path(models.esrgan), Path(models.lora))
    images = {name: Image.new("RGB", size, (10, 20, 30)) for name, size in INPUT_SIZES.items()}
    gen = image_gen_params(params, images.__getitem__)
    c_params = ffi.new("sd_img_gen_params_t *")
    native.lib.sd_img_gen_params_init(c_params)
    arena = Arena()
    gen.fill(c_params, native.lib, arena)
    return params, c_params, struct_to_dict(c_params, native.lib), arena


def test_the_sample_job_sets_every_row_of_the_table(built) -> None:
    params, *_ = built
    assert set(IMAGE_FIELDS) <= {key for key, _ in flatten(params)}


def test_every_image_field_reaches_the_c_struct(built) -> None:
    params, c_params, got, _arena = built
    flat = dict(flatten(params))

    def at(path: str):
        return field_at(got, path)

    assert (at("prompt"), at("negative_prompt"), at("width"), at("height"), at("seed")) == (
        "a cat",
        "a dog",
        64,
        48,
        77,
    )
    assert (at("batch_count"), at("clip_skip"), at("lora_count")) == (2, 2, 1)
    assert c_params.loras[0].multiplier == 0.25
    assert ffi.string(c_params.loras[0].path) == params["loras"][0]["path"].encode()
    for key, size in (("init_image", (64, 48)), ("mask_image", (64, 40)), ("control_image", (64, 32))):
        assert (at(key)["width"], at(key)["height"]) == size
    assert at("mask_image")["channel"] == 1
    assert at("ref_images_count") == 2 and (c_params.ref_images[1].width, c_params.ref_images[1].height) == (16, 24)
    assert at("pm_params.id_images_count") == 1 and c_params.pm_params.id_images[0].width == 40
    assert at("sample_params.sample_method") == "dpm++2m" and at("sample_params.scheduler") == "karras"
    assert at("sample_params.custom_sigmas_count") == 3
    assert [c_params.sample_params.custom_sigmas[i] for i in range(3)] == pytest.approx([14.6, 3.0, 0.0])
    assert at("sample_params.guidance.slg.layer_count") == 2
    assert [c_params.sample_params.guidance.slg.layers[i] for i in range(2)] == [7, 8]
    assert at("hires.enabled") is True and at("hires.upscaler") == "Model"
    assert at("hires.model_path") == params["hires"]["model_path"]
    assert at("vae_tiling_params.enabled") is True
    assert at("cache.mode") == "ucache" and at("cache.scm_mask") == "1,0,1"
    # Every plain number and switch: the struct holds the job's value.
    special = {
        "sampler",
        "scheduler",
        "sigmas",
        "slg.layers",
        "hires",
        "hires.upscaler",
        "vae_tiling",
        "cache.mode",
        "loras",
        "init_image",
        "mask_image",
        "control_image",
        "ref_images",
        "pm_id_images",
        "vae_tiling.tile_size",
    }
    for key, targets in IMAGE_FIELDS.items():
        if key in special:
            continue
        for target in (targets,) if isinstance(targets, str) else targets:
            value = at(target)
            assert value == pytest.approx(flat[key]) if isinstance(value, float) else value == flat[key], key
    # tile_size sets x and y; the job's own tile_size_x/_y come later and win.
    assert (at("vae_tiling_params.tile_size_x"), at("vae_tiling_params.tile_size_y")) == (32, 40)


def test_tile_size_alone_sets_both_axes(native) -> None:
    gen = image_gen_params({"prompt": "x", "vae_tiling": {"tile_size": 24}}, lambda p: None)
    assert (gen.vae_tiling_params.tile_size_x, gen.vae_tiling_params.tile_size_y) == (24, 24)
    assert gen.vae_tiling_params.enabled is True and gen.hires.enabled is None


#: A request value per MODEL_OPTIONS row (any non-default value the schema accepts).
OPTION_VALUES = {
    "weight_type": "q8_0",
    "flash_attn": True,
    "offload_to_cpu": True,
    "keep_vae_on_cpu": True,
    "keep_clip_on_cpu": True,
    "keep_controlnet_on_cpu": True,
    "vae_conv_direct": True,
    "diffusion_conv_direct": True,
    "diffusion_flash_attn": True,
    "rng": "cpu",
    "sampler_rng": "std_default",
    "prediction": "v",
    "lora_apply_mode": "immediately",
    "mmap": True,
    "max_vram": 3.5,
    "tensor_type_rules": "^vae\\.=f16",
    "taesd_preview_only": True,
    "circular": True,
    "circular_x": True,
    "circular_y": True,
    "force_sdxl_vae_conv_scale": True,
    "chroma_use_dit_mask": False,
    "chroma_use_t5_mask": True,
    "chroma_t5_mask_pad": 3,
    "qwen_image_zero_cond_t": True,
}


def test_every_model_option_and_component_reaches_sd_ctx_params(native, models) -> None:
    assert set(OPTION_VALUES) == set(MODEL_OPTIONS)
    GenerationRequest(prompt="x", **OPTION_VALUES)  # the schema accepts every sample value
    options = {}
    for name, targets in MODEL_OPTIONS.items():
        for target in (targets,) if isinstance(targets, str) else targets:
            options[target] = OPTION_VALUES[name]
    paths = {option: str(models.lora) for option, _folder in MODEL_COMPONENTS.values()}
    spec = {
        "path": str(models.checkpoint),
        "options": {**options, **paths, "embeddings": [{"name": "e", "path": str(models.lora)}]},
    }
    c_params = ffi.new("sd_ctx_params_t *")
    native.lib.sd_ctx_params_init(c_params)
    arena = Arena()
    context_params(spec, 3).fill(c_params, native.lib, arena)
    got = struct_to_dict(c_params, native.lib)
    for name, targets in MODEL_OPTIONS.items():
        for target in (targets,) if isinstance(targets, str) else targets:
            value = got[target]
            expected = OPTION_VALUES[name]
            assert math.isclose(value, expected) if isinstance(value, float) else value == expected, name
    for option in paths:
        assert got[option] == str(models.lora), option
    assert got["model_path"] == str(models.checkpoint) and got["embedding_count"] == 1
    assert (got["n_threads"], got["vae_decode_only"], got["free_params_immediately"]) == (3, False, False)


@pytest.mark.parametrize(
    "field, ctype",
    [
        ("rng", "enum rng_type_t"),
        ("sampler_rng", "enum rng_type_t"),
        ("prediction", "enum prediction_t"),
        ("lora_apply_mode", "enum lora_apply_mode_t"),
    ],
)
def test_enum_choices_are_the_librarys_names(native, field, ctype) -> None:
    from typing import get_args

    from sdrest.engine.enums import enum_names

    annotation = GenerationRequest.model_fields[field].annotation
    literal = next(arg for arg in get_args(annotation) if arg is not type(None))
    assert set(get_args(literal)) == set(enum_names(native.lib, ctype))


def test_cache_modes_are_the_librarys(native) -> None:
    from typing import get_args

    from sdrest.api.schemas.generation import CacheRequest
    from sdrest.engine.enums import enum_names

    assert set(get_args(CacheRequest.model_fields["mode"].annotation)) == set(
        enum_names(native.lib, "enum sd_cache_mode_t")
    )
