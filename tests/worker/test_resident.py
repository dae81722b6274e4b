"""The resident-model rule on its own (sdrest.worker.resident): count and memory budget, least
recently used out, the estimate of a model not loaded yet. Contexts here are plain objects that
record being closed; tests/worker/test_model_memory.py runs the same rule on the real library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrest.worker.resident import MIB, Resident, ResidentModels, file_bytes, model_key


class Closable:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _file(tmp_path: Path, name: str, mib: int) -> str:
    path = tmp_path / name
    with path.open("wb") as handle:
        handle.truncate(mib * MIB)  # sparse: the size counts, not the disk
    return str(path)


def _spec(path: str, **options: Any) -> dict[str, Any]:
    return {"name": Path(path).stem, "path": path, "options": options}


def _add(models: ResidentModels, spec: dict[str, Any], mib: int | None) -> Resident:
    memory = None if mib is None else {"ram_bytes": mib * MIB, "vram_bytes": 0}
    entry = Resident(key=model_key(spec), spec=spec, context=Closable(), seconds=1.0, memory=memory)
    models.add(entry)
    return entry


def test_a_model_not_loaded_yet_is_estimated_by_its_files(tmp_path: Path) -> None:
    spec = _spec(_file(tmp_path, "a.safetensors", 300), vae_path=_file(tmp_path, "vae.safetensors", 80), wtype="f16")
    assert file_bytes(spec) == 380 * MIB
    assert ResidentModels(3, 1000 * MIB).estimate(spec) == 380 * MIB


def test_a_model_loaded_before_is_estimated_by_what_it_took(tmp_path: Path) -> None:
    models = ResidentModels(1, 1000 * MIB)
    spec = _spec(_file(tmp_path, "a.safetensors", 300), wtype="f32")
    _add(models, spec, 600)  # converted to f32 on load: twice its file
    models.clear()
    assert models.estimate(spec) == 600 * MIB


def test_a_load_that_would_exceed_the_budget_evicts_least_recently_used_first(tmp_path: Path) -> None:
    models = ResidentModels(5, 1000 * MIB)
    a, b, c = (_spec(_file(tmp_path, f"{name}.safetensors", 300)) for name in "abc")
    entry_a, entry_b, entry_c = _add(models, a, 300), _add(models, b, 300), _add(models, c, 300)
    models.get(entry_a.key)  # a used since b: b is now the oldest
    evicted = models.make_room(_spec(_file(tmp_path, "d.safetensors", 300)))
    assert evicted == [entry_b] and entry_b.context.closed and not entry_c.context.closed
    assert [entry.key for entry in models.entries()] == [entry_c.key, entry_a.key]
    assert models.used == 600 * MIB


def test_the_count_limit_still_holds_under_a_budget(tmp_path: Path) -> None:
    models = ResidentModels(2, 10_000 * MIB)
    a, b = (_spec(_file(tmp_path, f"{name}.safetensors", 10)) for name in "ab")
    entry_a = _add(models, a, 10)
    _add(models, b, 10)
    assert models.make_room(_spec(_file(tmp_path, "c.safetensors", 10))) == [entry_a]


def test_a_model_bigger_than_its_estimate_pushes_out_more_after_loading(tmp_path: Path) -> None:
    models = ResidentModels(5, 1000 * MIB)
    a, b = (_spec(_file(tmp_path, f"{name}.safetensors", 300)) for name in "ab")
    entry_a, entry_b = _add(models, a, 300), _add(models, b, 300)
    new = _spec(_file(tmp_path, "n.safetensors", 300), wtype="f32")
    assert models.make_room(new) == []  # 300 estimated: fits beside a and b
    entry_new = _add(models, new, 600)  # but it took 600
    assert models.trim(keep=entry_new.key) == [entry_a]
    assert [entry.key for entry in models.entries()] == [entry_b.key, entry_new.key]


def test_a_model_bigger_than_the_budget_is_kept_alone(tmp_path: Path) -> None:
    models = ResidentModels(5, 500 * MIB)
    small = _add(models, _spec(_file(tmp_path, "s.safetensors", 100)), 100)
    big = _spec(_file(tmp_path, "big.safetensors", 800))
    assert models.make_room(big) == [small]
    entry_big = _add(models, big, 800)
    assert models.trim(keep=entry_big.key) == []
    assert models.entries() == [entry_big]


def test_without_a_budget_only_the_count_limits(tmp_path: Path) -> None:
    models = ResidentModels(3)
    for name in "ab":
        _add(models, _spec(_file(tmp_path, f"{name}.safetensors", 5000)), 5000)
    assert models.make_room(_spec(_file(tmp_path, "c.safetensors", 5000))) == []
