"""The shipped recipe catalogue: well-formed, each recipe's installed state read from its files,
its preset written so that ``model: <recipe>`` selects the whole setup."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from sdrest.api.errors import ApiError
from sdrest.api.jobparams import with_preset
from sdrest.models.hub import HfSource, parse_source
from sdrest.models.presets import load_preset
from sdrest.models.recipes import RecipeError, find_recipe, load_recipes, parse_catalogue, write_preset
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders, ModelType

#: The setups issue 20 asks the catalogue to hold at least, by family.
REQUIRED_FAMILIES = {"sd1", "sdxl", "sd2", "flux", "sd3", "z_image", "helper"}


def raw_catalogue() -> list[dict]:
    return yaml.safe_load(resources.files("sdrest.models").joinpath("recipes.yaml").read_text(encoding="utf-8"))


def test_recipe_names_are_unique_and_a_duplicate_is_refused() -> None:
    names = [item["name"] for item in raw_catalogue()]
    assert len(names) == len(set(names)) == len(load_recipes())
    with pytest.raises(RecipeError, match="'sd15' appears twice"):
        parse_catalogue([raw_catalogue()[0], raw_catalogue()[0]])


def test_the_catalogue_holds_the_asked_setups_each_complete() -> None:
    recipes = load_recipes()
    assert {r.family for r in recipes.values()} >= REQUIRED_FAMILIES
    assert {"flux1-schnell-q4", "flux1-schnell-q8", "taesd", "taesdxl", "taef1"} <= set(recipes)
    for recipe in recipes.values():
        assert recipe.files and recipe.memory_mb > 0 and recipe.license and recipe.title, recipe.name
        assert recipe.size is not None and recipe.size == sum(f.size or 0 for f in recipe.files)
        for file in recipe.files:
            assert Path(file.name).suffix.lower() in file.type.extensions, (recipe.name, file.name)
            assert file.sha256 is None or len(file.sha256) == 64, (recipe.name, file.name)
    flux = recipes["flux1-schnell-q4"]
    assert {f.field for f in flux.files} == {"diffusion_model", "clip_l", "t5xxl", "vae"}
    assert [f.name for f in recipes["sdxl-base"].files if f.type is ModelType.VAE] == ["sdxl_vae-fp16-fix.safetensors"]


def test_every_source_parses_to_the_file_it_names() -> None:
    for recipe in load_recipes().values():
        for file in recipe.files:
            source = parse_source(file.source)
            assert source.text == file.source, (recipe.name, file.source)  # written canonically
            if isinstance(source, HfSource):
                assert source.revision == "main" and Path(source.path).suffix == Path(file.name).suffix


def test_files_of_the_same_name_in_one_folder_are_the_same_source() -> None:
    # clip_l and ae are shared by Flux, SD3.5 and Z-Image: one file, so one source per (folder, name)
    seen: dict[tuple[ModelType, str], str] = {}
    for recipe in load_recipes().values():
        for file in recipe.files:
            key = (file.type, file.name)
            assert seen.setdefault(key, file.source).rsplit("/", 1)[-1] == file.source.rsplit("/", 1)[-1], key


def test_installed_state_follows_the_files_present(tmp_path: Path) -> None:
    folders = ModelFolders.build(tmp_path)
    recipe = find_recipe("flux1-schnell-q4")
    assert recipe.installed(folders) == (False, False, False, False)
    vae = next(f for f in recipe.files if f.type is ModelType.VAE)
    vae.path(folders).parent.mkdir(parents=True)
    vae.path(folders).write_bytes(b"x")
    assert recipe.installed(folders) == tuple(f is vae for f in recipe.files)
    assert vae not in recipe.missing(folders) and len(recipe.missing(folders)) == 3
    # the shared VAE counts for Z-Image too
    assert find_recipe("z-image-turbo").installed(folders) == (False, False, True)


def test_an_unknown_recipe_is_named_with_the_known_ones() -> None:
    with pytest.raises(RecipeError, match=r"unknown recipe 'flux3'; known recipes: sd15, "):
        find_recipe("flux3")


def test_write_preset_binds_every_component_and_a_helper_writes_none(tmp_path: Path) -> None:
    folders = ModelFolders.build(tmp_path)
    recipe = find_recipe("z-image-turbo")
    path = write_preset(recipe, folders)
    assert path == tmp_path / "presets" / "z-image-turbo.json"
    assert load_preset(path) == {
        "diffusion_model": "z_image_turbo-Q3_K.gguf",
        "llm": "Qwen3-4B-Instruct-2507-Q4_K_M.gguf",
        "vae": "ae.safetensors",
        **dict(recipe.defaults),
    }
    assert write_preset(find_recipe("taesd"), folders) is None
    assert sorted(p.name for p in (tmp_path / "presets").iterdir()) == ["z-image-turbo.json"]


def library_with(tmp_path: Path, recipe_name: str, *, checkpoint: str | None = None) -> ModelLibrary:
    folders = ModelFolders.build(tmp_path)
    recipe = find_recipe(recipe_name)
    for file in recipe.files:
        file.path(folders).parent.mkdir(parents=True, exist_ok=True)
        file.path(folders).write_bytes(b"x")
    write_preset(recipe, folders)
    if checkpoint:
        folders.path(ModelType.CHECKPOINT).mkdir(parents=True, exist_ok=True)
        (folders.path(ModelType.CHECKPOINT) / checkpoint).write_bytes(b"x")
    library = ModelLibrary(folders, detect_files=False)
    library.scan()
    return library


def test_a_model_naming_a_recipe_expands_to_its_preset_and_the_request_wins(tmp_path: Path) -> None:
    library = library_with(tmp_path, "flux1-schnell-q4")
    data = with_preset({"model": "flux1-schnell-q4", "prompt": "p", "steps": 2}, library)
    assert data == {**find_recipe("flux1-schnell-q4").preset(), "prompt": "p", "steps": 2}
    assert "model" not in data


def test_a_checkpoint_of_the_same_name_stays_the_checkpoint(tmp_path: Path) -> None:
    library = library_with(tmp_path, "flux1-schnell-q4", checkpoint="flux1-schnell-q4.safetensors")
    assert with_preset({"model": "flux1-schnell-q4"}, library) == {"model": "flux1-schnell-q4"}


def test_a_preset_without_a_model_file_is_no_model(tmp_path: Path) -> None:
    library = library_with(tmp_path, "taesd")
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "fast.json").write_text('{"steps": 4}')
    library.scan()
    assert with_preset({"model": "fast"}, library) == {"model": "fast"}


def test_a_broken_model_preset_is_a_422_naming_model(tmp_path: Path) -> None:
    library = library_with(tmp_path, "sd15")
    (tmp_path / "presets" / "sd15.json").write_text("[1, 2]")
    with pytest.raises(ApiError) as caught:
        with_preset({"model": "sd15"}, library)
    assert (caught.value.status, caught.value.field) == (422, "model")
