"""--max-loaded-models: the worker keeps several models loaded (least recently used out), so
jobs alternating between checkpoints load each once; /status lists what is resident."""

from __future__ import annotations

import pytest

from server_helpers import Server, link_models_with_copies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_dir(models, tmp_path_factory):
    return link_models_with_copies(models, tmp_path_factory.mktemp("models"))


def _loaded_per_job(server: Server, names: list[str]) -> list[bool]:
    """Run one generation per model name, in order; for each, whether it had to load its model."""
    loads = []
    for seed, name in enumerate(names):
        job = server.submit(model=name, seed=seed, wait=True)
        assert job["status"] == "completed", job["error"]
        loads.append("loading" in job["timings"])
    return loads


def _loaded_per_load_job(server: Server, names: list[str]) -> list[bool]:
    """The same through POST /api/v1/models/load (no sampling: cheap on a busy machine)."""
    loads = []
    for name in names:
        response = server.post("/api/v1/models/load", json={"model": name, "wait": True})
        assert response.status_code == 200, response.text
        job = response.json()
        assert job["status"] == "completed", job["error"]
        loads.append("loading" in job["timings"])
    return loads


def test_alternating_two_models_loads_each_once(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--max-loaded-models", "2").start()
    try:
        assert _loaded_per_job(server, ["sd1", "sd1b"] * 2) == [True, True, False, False]
        status = server.status()
        resident = status["resident_models"]
        assert [entry["name"] for entry in resident] == ["sd1", "sd1b"]  # least recently used first
        for entry in resident:
            assert entry["memory"]["ram_bytes"] > 100 * 2**20  # the synthetic SD1's weights
            assert entry["load_seconds"] > 0
        assert status["loaded_model"] == "sd1b"
        assert status["worker"]["starts"] == 1
    finally:
        server.stop()


def test_one_loaded_model_reloads_on_every_switch(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir).start()
    try:
        assert _loaded_per_load_job(server, ["sd1", "sd1b", "sd1"]) == [True] * 3
        assert [entry["name"] for entry in server.status()["resident_models"]] == ["sd1"]
    finally:
        server.stop()


def test_the_least_recently_used_model_is_unloaded_first(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--max-loaded-models", "2").start()
    try:
        # sd1c evicts sd1b (sd1 was used since), so sd1 stays loaded and sd1b loads again.
        assert _loaded_per_load_job(server, ["sd1", "sd1b", "sd1", "sd1c", "sd1", "sd1b"]) == [
            True,
            True,
            False,
            True,
            False,
            True,
        ]
        assert [entry["name"] for entry in server.status()["resident_models"]] == ["sd1", "sd1b"]
    finally:
        server.stop()


def test_bad_max_loaded_models_is_refused(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--max-loaded-models", "0")
    with pytest.raises(RuntimeError, match="max_loaded_models: must be at least 1"):
        server.start()
