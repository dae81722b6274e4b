"""Each recipe's preset, selected as ``model: <recipe>``, gives the engine exactly the options the
docs' sd-cli command gives. The request goes through the server's own path (with_preset,
read_values, generation_params) and the worker's mapping (context_params, image_gen_params);
the expectation is built from the sd-cli arguments alone, with sd-cli's own meaning of each flag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdrest.api.jobparams import InputFiles, generation_params, read_values, with_preset
from sdrest.api.schemas.generation import GenerationRequest
from sdrest.engine import ContextParams, ImageGenParams
from sdrest.models.recipes import Recipe, load_recipes, write_preset
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders
from sdrest.settings import Settings
from sdrest.worker.mapping import context_params, image_gen_params, set_path

#: sd-cli's flags as the pinned examples/common/common.cpp defines them: the option, which struct
#: it fills (ctx: sd_ctx_params_t, gen: sd_img_gen_params_t), the field, and its value's type
#: (None: a switch that sets true; "path": a model file).
SD_CLI_FLAGS: dict[str, tuple[str, str, Callable[[str], Any] | str | None]] = {
    "-m": ("ctx", "model_path", "path"),
    "--diffusion-model": ("ctx", "diffusion_model_path", "path"),
    "--vae": ("ctx", "vae_path", "path"),
    "--taesd": ("ctx", "taesd_path", "path"),
    "--clip_l": ("ctx", "clip_l_path", "path"),
    "--clip_g": ("ctx", "clip_g_path", "path"),
    "--t5xxl": ("ctx", "t5xxl_path", "path"),
    "--llm": ("ctx", "llm_path", "path"),
    "--clip-on-cpu": ("ctx", "keep_clip_on_cpu", None),
    "--offload-to-cpu": ("ctx", "offload_params_to_cpu", None),
    "--diffusion-fa": ("ctx", "diffusion_flash_attn", None),
    "-H": ("gen", "height", int),
    "-W": ("gen", "width", int),
    "--steps": ("gen", "sample_params.sample_steps", int),
    "--cfg-scale": ("gen", "sample_params.guidance.txt_cfg", float),
    "--sampling-method": ("gen", "sample_params.sample_method", str),
}
PROMPT, SEED, THREADS = "a lovely cat", 42, 2
MODELS = [recipe for recipe in load_recipes().values() if recipe.selectable]


def installed(recipe: Recipe, root: Path) -> ModelFolders:
    """A models folder holding the recipe's files (placeholders: nothing is loaded) and its preset."""
    folders = ModelFolders.build(root)
    for file in recipe.files:
        file.path(folders).parent.mkdir(parents=True, exist_ok=True)
        file.path(folders).write_bytes(b"placeholder")
    write_preset(recipe, folders)
    return folders


def from_sd_cli(recipe: Recipe, folders: ModelFolders) -> tuple[ContextParams, ImageGenParams]:
    """The engine structs the recipe's sd-cli arguments fill (files found in their folders)."""
    paths = {file.name: str(file.path(folders)) for file in recipe.files}
    context, gen = ContextParams(n_threads=THREADS, vae_decode_only=False), ImageGenParams()
    built: dict[str, Any] = {"ctx": context, "gen": gen}
    set_path(built["gen"], "prompt", PROMPT)
    set_path(built["gen"], "seed", SEED)
    set_path(built["gen"], "batch_count", 1)
    set_path(built["gen"], "loras", [])  # the server always sends its list of LoRAs (none here)
    args = list(recipe.sd_cli_flags)
    while args:
        flag = args.pop(0)
        target, field, kind = SD_CLI_FLAGS[flag]
        value: Any = True
        if kind == "path":
            value = paths[args.pop(0)]
        elif callable(kind):
            value = kind(args.pop(0))
        set_path(built[target], field, value)
    return context, gen


def from_request(recipe: Recipe, folders: ModelFolders, tmp_path: Path) -> tuple[ContextParams, ImageGenParams]:
    """The engine structs of ``{"model": <recipe>, "prompt", "seed"}`` sent to the server."""
    library = ModelLibrary(folders, detect_files=False)
    library.scan()
    settings = Settings(data_dir=tmp_path / "data", models_dir=folders.models_dir)
    data = with_preset({"model": recipe.name, "prompt": PROMPT, "seed": SEED}, library)
    values = read_values(GenerationRequest, data, from_form=False, mode="txt2img")
    params = generation_params(values, "txt2img", settings, InputFiles(settings, None), None, library)  # type: ignore[arg-type]
    job = {k: v for k, v in params.items() if k not in ("model", "model_path", "model_options", "mode")}
    context = context_params({"path": params["model_path"], "options": params["model_options"]}, THREADS)
    return context, image_gen_params(job, lambda path: pytest.fail(f"no input image expected: {path}"))


@pytest.mark.parametrize("recipe", MODELS, ids=[r.name for r in MODELS])
def test_the_preset_gives_the_engine_what_the_sd_cli_flags_give(recipe: Recipe, tmp_path: Path) -> None:
    folders = installed(recipe, tmp_path / "models")
    assert from_request(recipe, folders, tmp_path) == from_sd_cli(recipe, folders)


def test_every_model_recipe_names_its_model_file_and_a_helper_binds_nothing() -> None:
    for recipe in load_recipes().values():
        flags = set(recipe.sd_cli_flags)
        assert recipe.selectable == bool(flags & {"-m", "--diffusion-model"}), recipe.name
