"""Cancelling a running job stops it inside the library: the worker process and its loaded
model stay, so the next job starts without a reload (a real server, worker and library).

The "cancelled" counter proves the library stopped: it counts the worker's answer that the
generation ended cancelled (a job that ran to its end would answer "done" instead), and
"cancel_kills" counts the fallback of killing the worker."""

from __future__ import annotations

import pytest

from server_helpers import Server, link_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("cancel")
    server = Server(root, link_models(models, root / "models"), "--model", "sd1").start()
    yield server
    server.stop()


def _wait_sampling(server: Server, job_id: str) -> None:
    """Until the job has made at least one sampling step (so the library is mid-generation)."""
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = server.get(f"/api/v1/generate/{job_id}").json()
        if job["status"] == "queued":  # not claimed yet (a busy machine)
            time.sleep(0.05)
            continue
        assert job["status"] == "running", job
        if (job["progress"] or {}).get("step", 0) >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started sampling")


def _counters(server: Server) -> tuple[int, int]:
    counters = server.status()["counters"]
    return counters.get("cancelled", 0), counters.get("cancel_kills", 0)


def _cancel_running(server: Server, **fields) -> dict:
    job = server.submit(steps=150, **fields)
    _wait_sampling(server, job["job_id"])
    response = server.delete(f"/api/v1/generate/{job['job_id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    return server.wait_job(job["job_id"])


def test_a_cancelled_job_keeps_the_worker_and_its_model(server: Server) -> None:
    warm = server.submit(seed=1, wait=True)  # the model is loaded (by --model or this job)
    assert warm["status"] == "completed"
    before = server.status()
    cancelled = _cancel_running(server, seed=2)
    assert cancelled["status"] == "cancelled"
    after_job = server.submit(seed=3, wait=True)
    assert after_job["status"] == "completed"
    # The next job found the model loaded: no loading stage, the same worker process.
    assert "loading" not in after_job["timings"]
    assert set(after_job["timings"]) >= {"encoding", "sampling", "decoding", "writing"}
    status = server.status()
    assert status["worker"]["pid"] == before["worker"]["pid"]
    assert status["worker"]["starts"] == before["worker"]["starts"]
    assert status["loaded_model"] == "sd1"
    counters = status["counters"]
    assert counters["cancelled"] == before["counters"].get("cancelled", 0) + 1
    assert counters.get("cancel_kills", 0) == 0


def test_the_worker_stops_in_place_and_runs_the_next_queued_job(server: Server) -> None:
    # The queued job starts only once the worker has given the cancelled one up; it starts
    # with the loaded model, in the same worker.
    pid = server.status()["worker"]["pid"]
    cancelled, kills = _counters(server)
    running = server.submit(steps=150, seed=4)
    _wait_sampling(server, running["job_id"])
    queued = server.submit(seed=5)
    assert server.delete(f"/api/v1/generate/{running['job_id']}").status_code == 200
    follow = server.wait_job(queued["job_id"])
    assert follow["status"] == "completed" and "loading" not in follow["timings"]
    stopped = server.get(f"/api/v1/generate/{running['job_id']}").json()
    assert stopped["status"] == "cancelled" and stopped["images"] == []
    assert stopped["progress"]["step"] < 150
    assert server.status()["worker"]["pid"] == pid
    assert _counters(server) == (cancelled + 1, kills)


def test_ten_cancels_in_a_row_stay_stable(server: Server) -> None:
    # Each cancel comes as soon as the job runs: while the model is checked, the prompt is
    # encoded, or just before the library clears its cancel flag as a generation starts.
    before = server.status()["worker"]
    cancelled, kills = _counters(server)
    for attempt in range(10):
        job = server.submit(steps=150, seed=100 + attempt)
        server.wait_job(job["job_id"], until=("running",))
        assert server.delete(f"/api/v1/generate/{job['job_id']}").status_code == 200
        ended = server.wait_job(job["job_id"])
        assert ended["status"] == "cancelled" and ended["error"] is None
    final = server.submit(seed=7, wait=True)
    assert final["status"] == "completed" and "loading" not in final["timings"]
    status = server.status()
    assert status["worker"]["pid"] == before["pid"] and status["worker"]["crashes"] == before["crashes"]
    assert status["worker"]["starts"] == before["starts"]
    assert _counters(server) == (cancelled + 10, kills)


def test_an_upscale_cannot_stop_in_place_so_its_worker_is_replaced(server: Server) -> None:
    # The upscaler has no cancel call: the worker says so and the supervisor kills it at once
    # (the fallback), instead of waiting --cancel-timeout.
    from helpers import test_image
    from server_helpers import png_base64

    before = server.status()["worker"]
    cancelled, kills = _counters(server)
    response = server.post(
        "/api/v1/upscale", json={"image": png_base64(test_image(512)), "upscaler": "x4", "wait": False}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    server.wait_job(job_id, until=("running",))
    assert server.delete(f"/api/v1/generate/{job_id}").status_code == 200
    assert server.wait_job(job_id)["status"] == "cancelled"
    after = server.submit(seed=9, wait=True)
    assert after["status"] == "completed"
    status = server.status()
    assert status["worker"]["starts"] == before["starts"] + 1 and status["worker"]["crashes"] == before["crashes"]
    assert _counters(server) == (cancelled + 1, kills + 1)
