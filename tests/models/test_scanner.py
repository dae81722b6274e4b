"""The model library scan: ids, categories, filters, safety rules, caching and lookups."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from model_files import tensors_of, write_torch_zip
from sdrest.models import hashing, scanner
from sdrest.models.hashing import HashCache
from sdrest.models.paths import ModelNotFoundError
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders, ModelType, parse_type_filter
from sdrest.synthetic.headers import (
    esrgan_basicsr,
    kohya_lora,
    sd1_checkpoint,
    sdxl_checkpoint,
    write_sparse_safetensors,
)

SD1_LORA = kohya_lora({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (768, 320)})


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small models/ tree with one of everything, plus traps."""
    models = tmp_path / "models"
    write_sparse_safetensors(models / "checkpoints" / "sd15" / "v1-5.safetensors", sd1_checkpoint())
    write_sparse_safetensors(models / "checkpoints" / "XL Base.fp16.safetensors", sdxl_checkpoint())
    write_torch_zip(models / "checkpoints" / "old.ckpt", {"state_dict": tensors_of(sd1_checkpoint())})
    write_sparse_safetensors(models / "lora" / "styles" / "ink.v2.safetensors", SD1_LORA)
    write_sparse_safetensors(models / "lora" / "styles" / "deep" / "nested.safetensors", SD1_LORA)
    (models / "lora" / "README.txt").write_text("not a model")
    write_sparse_safetensors(models / "lora" / ".hidden.safetensors", SD1_LORA)
    write_sparse_safetensors(models / "lora" / ".cache" / "partial.safetensors", SD1_LORA)
    write_torch_zip(models / "esrgan" / "x4.pth", {"params_ema": tensors_of(esrgan_basicsr(blocks=2))})
    (models / "presets").mkdir()
    (models / "presets" / "fast.yaml").write_text("steps: 4\n")
    (models / "presets" / "broken.json").write_text("[1]")
    (models / "prompts").mkdir()
    (models / "prompts" / "ink.txt").write_text("ink drawing of {prompt}")
    (models / "prompts" / "ink.yaml").write_text("not a prompt type")
    # Outside the models dir: a secret that a symlink tries to expose.
    outside = tmp_path / "outside"
    write_sparse_safetensors(outside / "secret.safetensors", SD1_LORA)
    (models / "lora" / "escape.safetensors").symlink_to(outside / "secret.safetensors")
    (models / "lora" / "escape_dir").symlink_to(outside, target_is_directory=True)
    (models / "lora" / "alias.safetensors").symlink_to(models / "lora" / "styles" / "ink.v2.safetensors")
    (models / "lora" / "broken.safetensors").symlink_to(models / "lora" / "nowhere.safetensors")
    return models


@pytest.fixture
def library(tree: Path) -> ModelLibrary:
    lib = ModelLibrary(ModelFolders.build(tree), HashCache())
    lib.scan()
    return lib


def _ids(entries) -> list[str]:
    return [e.id for e in entries]


def test_scan_lists_ids_names_and_categories(library: ModelLibrary) -> None:
    checkpoints = library.entries(ModelType.CHECKPOINT)
    assert _ids(checkpoints) == [
        "checkpoint/old.ckpt",
        "checkpoint/sd15/v1-5.safetensors",
        "checkpoint/XL Base.fp16.safetensors",
    ]
    sd15 = library.get("checkpoint/sd15/v1-5.safetensors")
    assert sd15 is not None
    assert (sd15.name, sd15.category, sd15.relative_path, sd15.extension) == (
        "sd15/v1-5",
        "sd15",
        "sd15/v1-5.safetensors",
        ".safetensors",
    )
    assert sd15.size == sd15.path.stat().st_size
    assert library.get("checkpoint/XL Base.fp16.safetensors").name == "XL Base.fp16"
    assert library.get("checkpoint/old.ckpt").category == ""
    nested = library.get("lora/styles/deep/nested.safetensors")
    assert (nested.category, nested.name) == ("styles", "styles/deep/nested")


def test_scan_detects_architectures(library: ModelLibrary) -> None:
    assert library.get("checkpoint/sd15/v1-5.safetensors").detection.architecture == "sd1"
    assert library.get("checkpoint/XL Base.fp16.safetensors").detection.architecture == "sdxl"
    assert library.get("checkpoint/old.ckpt").detection.architecture == "sd1"
    assert library.get("lora/styles/ink.v2.safetensors").detection.architecture == "sd1"
    assert library.get("esrgan/x4.pth").detection.details["num_blocks"] == 2
    assert library.get("presets/broken.json").detection.error is not None


def test_extensions_per_type_and_hidden_files(library: ModelLibrary) -> None:
    loras = _ids(library.entries(ModelType.LORA))
    assert "lora/README.txt" not in loras
    assert not any("hidden" in i or ".cache" in i for i in loras)
    prompts = _ids(library.entries(ModelType.PROMPTS))
    assert prompts == ["prompts/ink.txt"]  # .yaml is a preset extension, not a prompt one
    assert _ids(library.entries(ModelType.PRESETS)) == ["presets/broken.json", "presets/fast.yaml"]


def test_symlinks_leaving_the_folder_are_refused_inside_ones_allowed(library: ModelLibrary) -> None:
    loras = _ids(library.entries(ModelType.LORA))
    assert "lora/escape.safetensors" not in loras
    assert not any(i.startswith("lora/escape_dir/") for i in loras)
    assert "lora/alias.safetensors" in loras
    skipped = {s.path: s.reason for s in library.last_scan.skipped}
    assert "outside" in skipped["escape.safetensors"] and "outside" in skipped["escape_dir"]
    assert "broken.safetensors" in skipped


def test_allow_symlinks_lists_outside_targets(tree: Path) -> None:
    lib = ModelLibrary(ModelFolders.build(tree), allow_symlinks=True)
    lib.scan()
    loras = _ids(lib.entries(ModelType.LORA))
    assert "lora/escape.safetensors" in loras and "lora/escape_dir/secret.safetensors" in loras
    assert lib.find(ModelType.LORA, "escape").id == "lora/escape.safetensors"


def test_missing_folders_are_reported_not_fatal(library: ModelLibrary) -> None:
    assert ModelType.VAE in library.last_scan.missing_folders
    assert ModelType.CHECKPOINT not in library.last_scan.missing_folders


@pytest.mark.parametrize(
    ("filter_text", "types"),
    [
        ("lora", {"lora"}),
        ("3", {"lora", "checkpoint"}),
        ("presets,prompts", {"presets", "prompts"}),
    ],
)
def test_type_filter_by_name_and_mask(library: ModelLibrary, filter_text: str, types: set[str]) -> None:
    entries = library.entries(parse_type_filter(filter_text))
    assert entries and {e.type.api_name for e in entries} == types


def test_search_is_a_case_insensitive_name_substring(library: ModelLibrary) -> None:
    found = _ids(library.entries(search="INK"))
    assert set(found) == {"lora/styles/ink.v2.safetensors", "prompts/ink.txt"}
    assert _ids(library.entries(ModelType.LORA, search="styles/")) == [
        "lora/styles/deep/nested.safetensors",
        "lora/styles/ink.v2.safetensors",
    ]
    assert library.entries(search="safetensors") == []  # the name has no extension


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sd15/v1-5", "checkpoint/sd15/v1-5.safetensors"),
        ("sd15/v1-5.safetensors", "checkpoint/sd15/v1-5.safetensors"),
        ("old", "checkpoint/old.ckpt"),
        ("XL Base.fp16", "checkpoint/XL Base.fp16.safetensors"),
    ],
)
def test_find_with_and_without_extension(library: ModelLibrary, name: str, expected: str) -> None:
    assert library.find(ModelType.CHECKPOINT, name).id == expected


@pytest.mark.parametrize(
    "name", ["missing", "../lora/styles/ink.v2", "/etc/passwd", "sd15/../../lora/alias", "", "v1-5"]
)
def test_find_refuses_unknown_and_escaping_names(library: ModelLibrary, name: str) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        library.find(ModelType.CHECKPOINT, name, field="model")
    assert info.value.field == "model"


@pytest.mark.parametrize("name", ["escape", "escape_dir/secret", ".hidden", ".cache/partial", "README.txt"])
def test_find_refuses_what_the_scan_does_not_list(library: ModelLibrary, name: str) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        library.find(ModelType.LORA, name)
    assert info.value.field == "lora"


def test_find_sees_a_file_added_after_the_scan(library: ModelLibrary, tree: Path) -> None:
    write_sparse_safetensors(tree / "lora" / "new.safetensors", SD1_LORA)
    assert library.get("lora/new.safetensors") is None
    entry = library.find(ModelType.LORA, "new")
    assert entry.id == "lora/new.safetensors" and entry.detection.architecture == "sd1"


def test_rescan_of_unchanged_files_does_no_detection(
    library: ModelLibrary, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = scanner.detect
    monkeypatch.setattr(scanner, "detect", lambda path, t: calls.append(path) or real(path, t))
    result = library.scan()
    assert calls == [] and result.detected == 0
    assert library.get("checkpoint/sd15/v1-5.safetensors").detection.architecture == "sd1"

    # A changed file is detected again; a deleted one disappears.
    changed = tree / "checkpoints" / "sd15" / "v1-5.safetensors"
    write_sparse_safetensors(changed, sdxl_checkpoint())
    os.utime(changed, ns=(0, changed.stat().st_mtime_ns + 10_000_000))
    (tree / "checkpoints" / "old.ckpt").unlink()
    result = library.scan()
    assert calls == [changed] and result.detected == 1
    assert library.get("checkpoint/sd15/v1-5.safetensors").detection.architecture == "sdxl"
    assert library.get("checkpoint/old.ckpt") is None


def test_hashes_on_demand_then_from_cache(library: ModelLibrary, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = library.get("lora/styles/ink.v2.safetensors")
    assert entry.sha256 is None and entry.short_hash is None
    hashes = library.hashes(entry)
    assert hashes.sha256 == hashing.sha256_file(entry.path)
    assert hashes.short_hash == hashes.sha256[:10] and len(hashes.legacy_hash) == 8
    assert library.get(entry.id).sha256 == hashes.sha256  # the listing is updated in place

    monkeypatch.setattr(hashing, "sha256_file", lambda path: pytest.fail("rehashed an unchanged file"))
    library.scan()
    assert library.get(entry.id).short_hash == hashes.short_hash
    assert library.hashes(library.get(entry.id)).sha256 == hashes.sha256


def test_to_dict_is_json_ready_and_hides_the_server_path(library: ModelLibrary, tree: Path) -> None:
    entry = library.get("checkpoint/sd15/v1-5.safetensors")
    data = ModelLibrary.to_dict(entry)
    text = json.dumps(data)
    assert str(tree) not in text and "path" not in data
    assert data["type"] == "checkpoint" and data["architecture"] == "sd1" and data["name"] == "sd15/v1-5"
    assert data["detection"]["details"]["context_dim"] == 768
    assert ModelLibrary.to_dict(entry, include_path=True)["path"] == str(entry.path)


def test_folder_overrides_are_scanned(tmp_path: Path) -> None:
    write_sparse_safetensors(tmp_path / "elsewhere" / "mine.safetensors", SD1_LORA)
    lib = ModelLibrary(ModelFolders.build(tmp_path / "models", {"lora": tmp_path / "elsewhere"}))
    lib.scan()
    assert _ids(lib.entries()) == ["lora/mine.safetensors"]


def test_concurrent_scans_and_reads_see_whole_snapshots(library: ModelLibrary, tree: Path) -> None:
    expected = len(library.entries())
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                assert len(library.entries()) == expected
                assert library.find(ModelType.CHECKPOINT, "sd15/v1-5").name == "sd15/v1-5"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    scanners = [threading.Thread(target=lambda: [library.scan() for _ in range(5)]) for _ in range(2)]
    for t in readers + scanners:
        t.start()
    for t in scanners:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
