"""Ten native aborts in a row: each fails only its own job, the server stays up, and the next
ordinary job succeeds."""

from __future__ import annotations

import pytest

from server_helpers import CRASH_PREFIX, Server, link_models

pytestmark = pytest.mark.slow

CRASHES = 10


def test_ten_worker_crashes_in_a_row(models, tmp_path) -> None:
    server = Server(tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1").start()
    try:
        crashed = [
            server.submit(prompt=CRASH_PREFIX + ("abort" if i % 2 else "segfault"), seed=i) for i in range(CRASHES)
        ]
        after = server.submit(seed=99)
        for job in crashed:
            result = server.wait_job(job["job_id"])
            assert result["status"] == "failed" and result["error"]["code"] == "worker_crashed", result
            assert result["error"]["signal"] in ("SIGABRT", "SIGSEGV")
        assert server.wait_job(after["job_id"])["status"] == "completed"
        status = server.status()
        assert status["status"] == "ok" and status["worker"]["alive"]
        assert status["worker"]["crashes"] == CRASHES and status["jobs"]["failed"] == CRASHES
    finally:
        server.stop()
