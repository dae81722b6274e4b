"""Model types: spec bit values, names, folders, extensions, filters and folder overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrest.models.types import ModelFolders, ModelType, parse_type_filter

SPEC = {  # name: (bit, api name, folder)
    "LORA": (1, "lora", "lora"),
    "CHECKPOINT": (2, "checkpoint", "checkpoints"),
    "VAE": (4, "vae", "vae"),
    "PRESETS": (8, "presets", "presets"),
    "PROMPTS": (16, "prompts", "prompts"),
    "NEG_PROMPTS": (32, "neg_prompts", "neg_prompts"),
    "TAESD": (64, "taesd", "taesd"),
    "ESRGAN": (128, "esrgan", "esrgan"),
    "CONTROLNET": (256, "controlnet", "controlnet"),
    "UPSCALER": (512, "upscaler", "upscaler"),
    "EMBEDDING": (1024, "embedding", "embeddings"),
    "DIFFUSION_MODEL": (2048, "diffusion_model", "diffusion_models"),
    "TEXT_ENCODER": (4096, "text_encoder", "text_encoders"),
}


def test_bit_values_names_and_folders_match_the_spec() -> None:
    assert [t.name for t in ModelType.singles()] == list(SPEC)
    for name, (bit, api_name, folder) in SPEC.items():
        model_type = ModelType[name]
        assert int(model_type) == bit
        assert model_type.api_name == api_name
        assert model_type.folder == folder


@pytest.mark.parametrize(
    "model_type",
    [ModelType.LORA, ModelType.CHECKPOINT, ModelType.VAE, ModelType.TAESD, ModelType.CONTROLNET, ModelType.EMBEDDING],
)
def test_weight_types_take_spec_extensions_plus_library_formats(model_type: ModelType) -> None:
    assert set(model_type.extensions) == {".safetensors", ".pt", ".ckpt", ".gguf", ".sft"}
    assert model_type.is_weights


def test_text_and_upscaler_extensions() -> None:
    assert set(ModelType.PRESETS.extensions) == {".json", ".yaml", ".yml"}
    assert set(ModelType.PROMPTS.extensions) == set(ModelType.NEG_PROMPTS.extensions) == {".txt", ".json"}
    for model_type in (ModelType.ESRGAN, ModelType.UPSCALER):
        assert set(model_type.extensions) == {".pth", ".pt", ".safetensors", ".gguf", ".sft"}
    assert not ModelType.PRESETS.is_weights and not ModelType.PROMPTS.is_weights
    for model_type in (ModelType.DIFFUSION_MODEL, ModelType.TEXT_ENCODER):
        assert ".gguf" in model_type.extensions and ".safetensors" in model_type.extensions


def test_combined_flags_have_no_single_type_properties() -> None:
    both = ModelType.LORA | ModelType.VAE
    assert both.members() == (ModelType.LORA, ModelType.VAE)
    with pytest.raises(ValueError, match="not a single model type"):
        _ = both.api_name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("lora", ModelType.LORA),
        (" LoRA ", ModelType.LORA),
        ("lora,vae", ModelType.LORA | ModelType.VAE),
        ("3", ModelType.LORA | ModelType.CHECKPOINT),
        ("6144", ModelType.DIFFUSION_MODEL | ModelType.TEXT_ENCODER),
        ("checkpoints", ModelType.CHECKPOINT),  # folder name accepted as an alias
        ("neg_prompts,1", ModelType.NEG_PROMPTS | ModelType.LORA),
        ("diffusion_model", ModelType.DIFFUSION_MODEL),
    ],
)
def test_parse_type_filter_accepts_names_lists_and_masks(value: str, expected: ModelType) -> None:
    assert parse_type_filter(value) == expected


@pytest.mark.parametrize("value", ["", " ", "loras2", "0", "8192", "16383", "-1", "lora,bogus", ","])
def test_parse_type_filter_refuses_the_rest_and_lists_valid_names(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_type_filter(value)
    message = str(info.value)
    assert "lora" in message and ("checkpoint" in message or "mask" in message)


def test_full_mask_is_accepted() -> None:
    assert parse_type_filter("8191").members() == ModelType.singles()


def test_folders_default_under_models_dir(tmp_path: Path) -> None:
    folders = ModelFolders.build(tmp_path)
    assert folders.path(ModelType.CHECKPOINT) == tmp_path / "checkpoints"
    assert folders[ModelType.EMBEDDING] == tmp_path / "embeddings"
    assert dict(folders.items())[ModelType.TEXT_ENCODER] == tmp_path / "text_encoders"
    assert len(dict(folders.items())) == 13


def test_folder_overrides_relative_and_absolute(tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared" / "loras"
    folders = ModelFolders.build(tmp_path / "models", {"checkpoint": "ckpts", ModelType.LORA: elsewhere, "VAE": "a/b"})
    assert folders.path(ModelType.CHECKPOINT) == tmp_path / "models" / "ckpts"
    assert folders.path(ModelType.LORA) == elsewhere
    assert folders.path(ModelType.VAE) == tmp_path / "models" / "a" / "b"
    assert folders.path(ModelType.TAESD) == tmp_path / "models" / "taesd"


def test_folder_override_with_unknown_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model type 'ckpt'"):
        ModelFolders.build(tmp_path, {"ckpt": "x"})
    with pytest.raises(ValueError):
        ModelFolders.build(tmp_path, {ModelType.LORA | ModelType.VAE: "x"})


def test_package_reexports_the_library_api_lazily() -> None:
    import sdrest.models as models
    from sdrest.models import scanner, types

    assert models.ModelType is types.ModelType
    assert models.ModelLibrary is scanner.ModelLibrary
    assert set(models.__all__) >= {"ModelLibrary", "HashCache", "parse_lora_tags", "ModelNotFoundError"}
    with pytest.raises(AttributeError):
        models.no_such_name  # noqa: B018
