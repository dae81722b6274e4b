"""``sdrest pull SOURCE|RECIPE``, ``sdrest pull --list`` and ``sdrest serve --pull RECIPE``.

Downloads run in this process through :func:`sdrest.models.hub.install`, the code path of the
server's download lane, into the folders the server would use (same settings: --models-dir,
--config, SDREST_* and the hub settings such as --hf-endpoint and --hf-token). A recipe pulls
the files it misses (those present are kept) and then writes the preset that makes it one model.
Exit status: 0 done, 1 a download failed, 2 bad input (unknown recipe, malformed source, bad
--type or --sha256).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from sdrest.models.hub import HubConfig, HubError, SourceError, install, parse_source
from sdrest.models.hub.install import InstalledFile
from sdrest.models.recipes import Recipe, RecipeError, find_recipe, load_recipes, write_preset
from sdrest.models.types import ModelFolders, ModelType
from sdrest.settings import Settings, SettingsError

#: The pull command's own arguments (the rest are settings).
OWN_ARGUMENTS = ("target", "list", "type", "sha256")


def add_command(commands: argparse._SubParsersAction) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a model (a source or a recipe) into the model folders",
        description="Download a model into the model folders. SOURCE: hf:OWNER/REPO/PATH[@REV], a "
        "huggingface.co or civitai.com link, civitai:VERSION_ID or an https:// URL; RECIPE: a name "
        "from --list (every file it needs, then its preset: 'model: RECIPE' selects it).",
    )
    pull.add_argument("target", nargs="?", metavar="SOURCE|RECIPE", help="what to download")
    pull.add_argument("--list", action="store_true", help="list the recipes with their sizes and what is installed")
    pull.add_argument("--type", metavar="TYPE", help="model folder of a source (default: the hub's type or the header)")
    pull.add_argument("--sha256", metavar="HEX", help="SHA256 the source's file must have")
    Settings.add_arguments(pull)


def run(flags: dict[str, Any], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    own = {name: flags.pop(name, None) for name in OWN_ARGUMENTS}
    flags.pop("command", None)
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:
        print(f"sdrest pull: {exc}", file=err)
        return 2
    folders = settings.model_folders()
    if own["list"]:
        print_recipes(folders, out, settings.recipes)
        return 0
    target = own["target"]
    if not target:
        print("sdrest pull: name a SOURCE or a RECIPE (see sdrest pull --list)", file=err)
        return 2
    config = HubConfig.from_settings(settings)
    try:
        if ":" in target:
            return pull_source(target, own["type"], own["sha256"], folders, config, out, err)
        if own["type"] or own["sha256"]:
            print(f"sdrest pull: --type and --sha256 are for a source; recipe {target!r} names its own", file=err)
            return 2
        return pull_recipe(find_recipe(target, settings.recipes), folders, config, out, err)
    except (RecipeError, SourceError) as exc:
        print(f"sdrest pull: {exc}", file=err)
        return 2


def pull_source(
    text: str,
    type_name: str | None,
    sha256: str | None,
    folders: ModelFolders,
    config: HubConfig,
    out: TextIO,
    err: TextIO,
) -> int:
    source = parse_source(text)
    try:
        model_type = ModelType.from_name(type_name) if type_name else None
    except ValueError as exc:
        print(f"sdrest pull: --type: {exc}", file=err)
        return 2
    try:
        installed = _install(source.text, folders, config, err, model_type=model_type, sha256=sha256)
    except HubError as exc:
        print(f"sdrest pull: {text}: {exc}", file=err)
        return 1
    _report(installed, folders, out)
    return 0


def pull_recipe(recipe: Recipe, folders: ModelFolders, config: HubConfig, out: TextIO, err: TextIO) -> int:
    """The recipe's missing files, then its preset."""
    for file in recipe.files:
        if file.installed(folders):
            print(f"already there: {_shown(file.path(folders), folders)}", file=out)
            continue
        try:
            installed = _install(
                file.source, folders, config, err, model_type=file.type, sha256=file.sha256, name=file.name
            )
        except HubError as exc:
            print(f"sdrest pull: {recipe.name}: {file.source}: {exc}", file=err)
            return 1
        _report(installed, folders, out)
    preset = write_preset(recipe, folders)
    if preset is not None:
        print(f"{recipe.name} is installed: use it as model {recipe.name!r} (preset {preset.name})", file=out)
    else:
        print(f"{recipe.name} is installed", file=out)
    return 0


def pull_recipes(names: Sequence[str], settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``sdrest serve --pull``: each recipe's missing files (0 when all are there)."""
    folders, config = settings.model_folders(), HubConfig.from_settings(settings)
    for name in names:
        try:
            recipe = find_recipe(name, settings.recipes)
        except RecipeError as exc:
            print(f"sdrest serve: --pull: {exc}", file=err)
            return 2
        status = pull_recipe(recipe, folders, config, out, err)
        if status:
            return status
    return 0


def with_pulled_model(settings: Settings, names: Sequence[str]) -> Settings:
    """The settings ``serve --pull`` serves with: without ``--model``, the last model recipe
    pulled is the model of requests that name none (helpers such as TAESD bind nothing)."""
    if settings.model is not None:
        return settings
    models = [name for name in names if find_recipe(name, settings.recipes).selectable]
    return dataclasses.replace(settings, model=models[-1]) if models else settings


def print_recipes(folders: ModelFolders, out: TextIO, extra: Path | None = None) -> None:
    rows = [("RECIPE", "SIZE", "MEMORY", "INSTALLED", "TITLE")]
    for recipe in load_recipes(extra).values():
        have = sum(recipe.installed(folders))
        state = "yes" if recipe.is_installed(folders) else f"{have} of {len(recipe.files)} files" if have else "no"
        rows.append((recipe.name, _size(recipe.size), _size(recipe.memory_mb << 20), state, recipe.title))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4], file=out
        )


def _install(source: str, folders: ModelFolders, config: HubConfig, err: TextIO, **options: Any) -> InstalledFile:
    # huggingface_hub's progress bars, installed with it (no type stubs)
    from tqdm.std import tqdm  # type: ignore[import-untyped]

    label = options.get("name") or source.rsplit("/", 1)[-1]
    with tqdm(desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=err, leave=True) as bar:
        return install(source, folders, config=config, on_progress=_progress(bar), **options)


def _progress(bar: Any) -> Callable[[int, int | None, float], None]:
    def update(done: int, total: int | None, bytes_per_second: float) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update


def _report(installed: InstalledFile, folders: ModelFolders, out: TextIO) -> None:
    where = _shown(installed.path, folders)
    if installed.skipped_existing:
        print(f"already there: {where} (sha256 {installed.sha256})", file=out)
        return
    flag = " (a pickle-based file: sdrest never unpickles it)" if installed.pickle else ""
    print(f"installed {where} ({installed.size} bytes, sha256 {installed.sha256}){flag}", file=out)


def _shown(path: Any, folders: ModelFolders) -> str:
    try:
        return str(path.relative_to(folders.models_dir))
    except ValueError:
        return str(path)


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"
