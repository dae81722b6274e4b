"""Native crashes in the worker, and kill -9 of the whole server: nothing is lost."""

from __future__ import annotations

import os
import signal
import time

import pytest

from server_helpers import CRASH_PREFIX, Server, link_models

pytestmark = pytest.mark.slow


@pytest.fixture()
def models_dir(models, tmp_path_factory):
    return link_models(models, tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize(("crash", "signal_name"), [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_native_crash_fails_the_job_and_the_server_keeps_serving(models_dir, tmp_path, crash, signal_name) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1").start()
    try:
        crashed = server.submit(prompt=CRASH_PREFIX + crash, wait=True)
        assert crashed["status"] == "failed"
        error = crashed["error"]
        assert error["code"] == "worker_crashed" and error["signal"] == signal_name
        assert any(crash in line for line in error["log"]), "the job's last warnings are kept"
        status = server.status()
        assert status["worker"]["crashes"] == 1
        assert status["worker"]["last_crash"]["job_id"] == crashed["job_id"]
        after = server.submit(seed=2, wait=True)
        assert after["status"] == "completed"
        assert server.status()["worker"]["starts"] == 2
    finally:
        server.stop()


def test_a_worker_killed_after_writing_its_images_leaves_no_files(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1").start()
    try:
        crashed = server.submit(prompt=CRASH_PREFIX + "after-write:abort", wait=True)
        assert crashed["status"] == "failed" and crashed["error"]["code"] == "worker_crashed"
        assert not (server.data_dir / "outputs" / crashed["job_id"]).exists()
        done = server.submit(seed=2, wait=True)
        assert done["status"] == "completed"
        assert [p.name for p in (server.data_dir / "outputs").iterdir()] == [done["job_id"]]
    finally:
        server.stop()


@pytest.mark.parametrize("requeue", [True, False])
def test_a_server_killed_after_a_job_wrote_its_images_leaves_no_unnamed_files(models_dir, tmp_path, requeue) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1").start()
    job = server.submit(prompt=CRASH_PREFIX + "after-write:stay")
    job_dir = server.data_dir / "outputs" / job["job_id"]
    while not any(job_dir.glob("*.png")):  # written; the worker now waits without reporting
        assert server.get(f"/api/v1/generate/{job['job_id']}").json()["status"] in ("queued", "running")
        time.sleep(0.1)
    server.kill9()
    server.args = ["--model", "sd1", "--max-interruptions", "1" if requeue else "0"]
    server.start()
    try:
        # Requeued, the job runs again (and stays again: its prompt says so), so it is cancelled
        # here; failed as interrupted, it is over. Either way the cut-off attempt's files are gone.
        after = server.get(f"/api/v1/generate/{job['job_id']}").json()
        if requeue:
            assert after["status"] in ("queued", "running")
            assert server.delete(f"/api/v1/generate/{job['job_id']}").status_code in (200, 202)
            after = server.wait_job(job["job_id"], until=("cancelled",))
        else:
            assert after["status"] == "failed" and after["error"]["code"] == "interrupted"
        assert not job_dir.exists()
    finally:
        server.stop()


def test_the_product_has_no_test_hooks(models_dir, tmp_path) -> None:
    # Without tests/hooks on its path the crash prompt is just a prompt, and the old test-only
    # request field is an unknown field.
    server = Server(
        tmp_path, models_dir, "--model", "sd1", env={"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    ).start()
    try:
        assert server.submit(prompt=CRASH_PREFIX + "abort", wait=True)["status"] == "completed"
        response = server.post("/api/v1/generate", json={"prompt": "x", "_test_crash": "abort"})
        assert response.status_code == 400 and response.json()["error"]["field"] == "_test_crash"
        assert server.status()["worker"]["crashes"] == 0
    finally:
        server.stop()


def test_kill_9_then_restart_loses_nothing(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1").start()
    done = server.submit(seed=1, wait=True)
    running = server.submit(steps=6, seed=2)
    queued = [server.submit(seed=10 + i) for i in range(2)]
    server.wait_job(running["job_id"], until=("running",))
    server.kill9()

    server.start()
    try:
        # A server crash is not the job's fault: the interrupted job runs again, first.
        again = server.wait_job(running["job_id"])
        assert again["status"] == "completed", again["error"]
        for job in queued:
            assert server.wait_job(job["job_id"])["status"] == "completed"
        old = server.get(f"/api/v1/generate/{done['job_id']}").json()
        assert old["status"] == "completed"
        assert server.get(old["images"][0]["url"]).status_code == 200
    finally:
        server.stop()


def test_interrupted_jobs_fail_after_the_bound_or_at_once_when_asked(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1", "--max-interruptions", "1").start()
    running = server.submit(steps=40, seed=2)
    for _ in range(2):
        server.wait_job(running["job_id"], until=("running",))
        server.kill9()
        server.start()
    try:
        job = server.wait_job(running["job_id"], until=("failed",))
        assert job["error"]["code"] == "interrupted"
        server.args = ["--model", "sd1", "--no-requeue-interrupted"]
        other = server.submit(steps=40, seed=3)
        server.wait_job(other["job_id"], until=("running",))
        server.kill9()
        server.start()
        assert server.get(f"/api/v1/generate/{other['job_id']}").json()["error"]["code"] == "interrupted"
    finally:
        server.stop()


def test_a_graceful_stop_puts_the_running_job_back(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir, "--model", "sd1", "--max-interruptions", "0").start()
    running = server.submit(steps=40, seed=2)
    server.wait_job(running["job_id"], until=("running",))
    server.stop(signal.SIGTERM)
    server.start()
    try:
        # Not "worker_crashed", not "interrupted" (no interruptions are allowed here): queued again.
        job = server.wait_job(running["job_id"], until=("running", "completed", "failed"))
        assert job["status"] != "failed", job["error"]
        server.delete(f"/api/v1/generate/{running['job_id']}")  # not worth 40 steps
    finally:
        server.stop()


def test_no_model_means_409_until_one_is_named(models_dir, tmp_path) -> None:
    server = Server(tmp_path, models_dir).start()
    try:
        response = server.post("/api/v1/generate", json={"prompt": "x", "width": 64, "height": 64})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "no_model_loaded"
        named = server.submit(model="sd1", wait=True)
        assert named["status"] == "completed"
        # Now a model is loaded, and requests without "model" use it.
        assert server.submit(wait=True)["model"] == "sd1"
    finally:
        server.stop()


def test_idle_unload_frees_the_model_and_the_next_job_loads_it_again(models_dir, tmp_path) -> None:
    import time

    server = Server(tmp_path, models_dir, "--model", "sd1", "--idle-unload-minutes", "0.02").start()
    try:
        assert server.submit(seed=1, wait=True)["status"] == "completed"
        deadline = time.monotonic() + 60
        while server.status()["loaded_model"] is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.status()["loaded_model"] is None  # unloaded after ~1.2 idle seconds
        again = server.submit(seed=1, wait=True)
        assert again["status"] == "completed" and again["model"] == "sd1"
        assert "loading" in again["timings"]  # it really was loaded again
    finally:
        server.stop()


def test_no_setting_or_config_key_turns_test_hooks_on(tmp_path) -> None:
    from sdrest.settings import Settings, SettingsError

    config = tmp_path / "sdrest.json"
    config.write_text('{"test_hooks": true}')
    with pytest.raises(SettingsError, match="test_hooks"):
        Settings.load({"config": str(config)}, environ={})
    assert "test_hooks" not in Settings().to_dict()
