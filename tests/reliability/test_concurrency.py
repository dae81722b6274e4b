"""50 concurrent submissions from 5 users, each cancelling some: every job is accounted for
and no user ever sees another's job."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from server_helpers import FAST, Server, add_users, bearer_headers, link_models

pytestmark = pytest.mark.slow

USERS = [f"user{i}" for i in range(5)]
PER_USER = 10


def _wait(server: Server, job_id: str, headers: dict[str, str]) -> dict:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = server.get(f"/api/v1/generate/{job_id}", headers=headers).json()
        if job["status"] in ("completed", "cancelled", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is still {job['status']}")


def test_fifty_concurrent_submits_from_five_users(models, tmp_path) -> None:
    server = Server(
        tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1", "--auth", "jwt", "--http-threads", "16"
    )
    accounts = {name: (f"{name}-pw-1", "user") for name in USERS}
    add_users(server, accounts)
    server.start()
    try:
        headers = bearer_headers(server, accounts)
        rng = random.Random(11)

        def submit(name: str, seed: int) -> tuple[str, str]:
            response = requests.post(
                server.url("/api/v1/generate"),
                headers=headers[name],
                timeout=120,
                json={**FAST, "seed": seed, "wait": False},
            )
            assert response.status_code == 202, response.text
            return name, response.json()["job_id"]

        with ThreadPoolExecutor(max_workers=50) as pool:
            submitted = list(pool.map(lambda i: submit(USERS[i % 5], i), range(5 * PER_USER)))
        owned = {name: [job for owner, job in submitted if owner == name] for name in USERS}
        cancelled: set[str] = set()

        def cancel(name: str, job_id: str) -> None:
            response = requests.delete(server.url(f"/api/v1/generate/{job_id}"), headers=headers[name], timeout=60)
            assert response.status_code in (200, 409), response.text  # 409: it finished first
            if response.status_code == 200:
                cancelled.add(job_id)

        with ThreadPoolExecutor(max_workers=15) as pool:
            list(
                pool.map(
                    lambda pair: cancel(*pair), [(name, job) for name in USERS for job in rng.sample(owned[name], 3)]
                )
            )

        for name in USERS:
            other = next(n for n in USERS if n != name)
            for job_id in owned[name]:
                final = _wait(server, job_id, headers[name])
                expected = "cancelled" if job_id in cancelled else "completed"
                assert final["status"] == expected, final
                assert server.get(f"/api/v1/generate/{job_id}", headers=headers[other]).status_code == 404
                assert server.delete(f"/api/v1/jobs/{job_id}", headers=headers[other]).status_code == 404
            listed = server.get("/api/v1/queue", headers=headers[name], params={"limit": 200}).json()
            assert sorted(job["job_id"] for job in listed["jobs"]) == sorted(owned[name])
        assert len({job for _, job in submitted}) == 5 * PER_USER
    finally:
        server.stop()
