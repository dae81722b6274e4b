"""Parameter dataclasses: complete coverage of the C structs, names, defaults, validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sdrest._native import ffi
from sdrest.engine import (
    CacheParams,
    ContextParams,
    Embedding,
    GuidanceParams,
    HiresParams,
    ImageGenParams,
    Lora,
    PhotoMakerParams,
    SampleParams,
    SlgParams,
    TilingParams,
    VideoGenParams,
    image_params,
    library_defaults,
)
from sdrest.engine.enums import enum_names, parse_enum
from sdrest.engine.structs import Arena, struct_to_dict

ALL_PARAMS = [
    CacheParams,
    ContextParams,
    Embedding,
    GuidanceParams,
    HiresParams,
    ImageGenParams,
    Lora,
    PhotoMakerParams,
    SampleParams,
    SlgParams,
    TilingParams,
    VideoGenParams,
]


@pytest.mark.parametrize("cls", ALL_PARAMS, ids=lambda c: c.__name__)
def test_every_c_field_has_a_python_field(cls) -> None:
    c_fields = {name for name, _ in ffi.typeof(cls.c_type).fields}
    py_fields = {f.name for f in dataclasses.fields(cls)}
    assert py_fields | set(cls.c_counts.values()) == c_fields
    assert not py_fields & set(cls.c_counts.values())


def test_library_defaults_come_from_the_init_functions(native) -> None:
    defaults = library_defaults("sd_img_gen_params_t", native)
    assert (defaults["width"], defaults["height"]) == (512, 512)
    assert defaults["sample_params"]["sample_steps"] == 20
    assert defaults["sample_params"]["sample_method"] == "default"  # the model picks
    assert defaults["hires"]["upscaler"] == "Latent"
    ctx_defaults = library_defaults("sd_ctx_params_t", native)
    assert ctx_defaults["n_threads"] == native.lib.sd_get_num_physical_cores()


def test_fill_writes_only_set_fields_over_the_defaults(native) -> None:
    params = image_params(
        prompt="a cat",
        width=64,
        height=96,
        steps=3,
        cfg_scale=5.5,
        sampler="euler_a",
        scheduler="karras",
        seed=9,
        loras=[("/x/a.safetensors", 0.5)],
    )
    c_params = ffi.new("sd_img_gen_params_t *")
    native.lib.sd_img_gen_params_init(c_params)
    arena = Arena()
    params.fill(c_params, native.lib, arena)
    got = struct_to_dict(c_params, native.lib)
    assert got["prompt"] == "a cat" and got["negative_prompt"] is None
    assert (got["width"], got["height"], got["seed"]) == (64, 96, 9)
    sample = got["sample_params"]
    assert (sample["sample_steps"], sample["sample_method"], sample["scheduler"]) == (3, "euler_a", "karras")
    assert sample["guidance"]["txt_cfg"] == 5.5
    assert got["strength"] == pytest.approx(0.75)  # untouched library default
    assert got["lora_count"] == 1
    assert ffi.string(c_params.loras[0].path) == b"/x/a.safetensors"
    assert c_params.loras[0].multiplier == 0.5


def test_enums_parse_by_library_name_and_integer(native) -> None:
    lib = native.lib
    assert parse_enum(lib, "enum sample_method_t", "euler_a", "sampler") == lib.EULER_A_SAMPLE_METHOD
    assert parse_enum(lib, "enum scheduler_t", "karras", "scheduler") == lib.KARRAS_SCHEDULER
    assert parse_enum(lib, "enum sd_type_t", "q8_0", "wtype") == lib.SD_TYPE_Q8_0
    assert parse_enum(lib, "enum sd_cache_mode_t", "easycache", "mode") == lib.SD_CACHE_EASYCACHE
    assert parse_enum(lib, "enum scheduler_t", 2, "scheduler") == 2
    assert "dpm++2m" in enum_names(lib, "enum sample_method_t")


@pytest.mark.parametrize("value", ["eulerish", "", 99, True, 1.5])
def test_unknown_enum_values_are_refused_naming_the_field(native, value) -> None:
    with pytest.raises(ValueError, match="sampler") as error:
        parse_enum(native.lib, "enum sample_method_t", value, "sampler")
    if isinstance(value, str):
        assert "euler_a" in str(error.value)  # lists the valid names


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"width": 65}, "width"),
        ({"height": 0}, "height"),
        ({"width": "64"}, "width"),
        ({"steps": 0}, "sample_steps"),
        ({"strength": 1.5}, "strength"),
        ({"batch_count": 0}, "batch_count"),
        ({"seed": 2**64}, "seed"),
        ({"prompt": 5}, "prompt"),
        ({"mask_image": "not-an-image"}, "mask_image"),
    ],
)
def test_bad_generation_parameters_raise_value_error(options, field) -> None:
    with pytest.raises(ValueError, match=field):
        image_params(**options).validate()


def test_non_finite_and_mistyped_numbers_are_refused_when_filled(native) -> None:
    for params, field in [
        (image_params(cfg_scale=math.nan), "txt_cfg"),
        (image_params(sampler="nope"), "sample_method"),
        (ImageGenParams(clip_skip=1.5), "clip_skip"),
        (ImageGenParams(vae_tiling_params=TilingParams(enabled=1)), "vae_tiling_params.enabled"),
    ]:
        c_params = ffi.new("sd_img_gen_params_t *")
        with pytest.raises(ValueError, match=field):
            params.fill(c_params, native.lib, Arena())


def test_missing_files_raise_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model_path"):
        ContextParams(model_path=tmp_path / "missing.safetensors").validate()
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="taesd_path"):
        ContextParams(model_path=model, taesd_path=tmp_path / "t.safetensors").validate()
    with pytest.raises(FileNotFoundError, match=r"loras\[0\].path"):
        image_params(loras=[(tmp_path / "l.safetensors", 1.0)]).validate()
    with pytest.raises(ValueError, match="model_path"):
        ContextParams().validate()


def test_unknown_convenience_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        image_params(colour="red")
