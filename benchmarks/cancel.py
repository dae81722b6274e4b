"""Cancel without a reload, against the same jobs on a warm worker, measured in one run.

A real server (``sdrest serve``, its worker, the synthetic SD1 model). For each round:

1. a long job runs; once it is sampling, the next job is queued and the long one is cancelled
   with ``DELETE /api/v1/generate/<id>``;
2. **DELETE to free**: the time from the DELETE to the worker taking up the next job (its
   ``started_at``), in sampling steps of the cancelled job (target: within one step);
3. **next job vs warm**: the next job's time (started to finished) over the same job on a warm
   worker that cancelled nothing (target <= 1.05: no reload).

For scale, the same next job after the worker was killed (what a cancel did before the
library could stop in place) is timed too.

    python benchmarks/cancel.py [--size 64] [--steps 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from harness import Server, link_models  # benchmarks/harness.py: this script's folder is on sys.path


def job_seconds(job: dict) -> float:
    return job["finished_at"] - job["started_at"]


def wait_step(server: Server, job_id: str, step: int) -> dict:
    while True:
        job = server.get(f"/api/v1/generate/{job_id}").json()
        if job["status"] != "running" or (job["progress"] or {}).get("step", 0) >= step:
            return job
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="steps of the next (measured) job")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    job = {"width": args.size, "height": args.size, "steps": args.steps, "sampler": "euler"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = Server(
            root, link_models(models, root / "models"), "--model", "sd1", "--log-level", "warning", "--preview", "none"
        ).start()
        try:
            server.submit(**job, seed=0, wait=True)  # the model is loaded and warm
            warm = [job_seconds(server.submit(**job, seed=1 + i, wait=True)) for i in range(args.rounds)]
            step_seconds = statistics.median(warm) / args.steps  # includes encode/decode: an upper bound
            free_steps, after_cancel = [], []
            pid = server.status()["worker"]["pid"]
            for i in range(args.rounds):
                long = server.submit(**{**job, "steps": 150}, seed=100 + i)
                sampling = wait_step(server, long["job_id"], 2)
                assert sampling["status"] == "running", sampling
                # The long job's own step time, from its progress (steps 2 to 4).
                first = time.time()
                wait_step(server, long["job_id"], 4)
                own_step = (time.time() - first) / 2
                queued = server.submit(**job, seed=1)
                deleted_at = time.time()
                assert server.delete(f"/api/v1/generate/{long['job_id']}").status_code == 200
                follow = server.wait_job(queued["job_id"])
                assert follow["status"] == "completed" and "loading" not in follow["timings"], follow
                free_steps.append((follow["started_at"] - deleted_at) / own_step)
                after_cancel.append(job_seconds(follow))
            assert server.status()["worker"]["pid"] == pid, "the worker was replaced"
            warm_median, cancel_median = statistics.median(warm), statistics.median(after_cancel)
            print(
                f"warm job ({args.size}x{args.size}, {args.steps} steps): median {warm_median:.3f} s "
                f"(~{step_seconds:.3f} s per step)"
            )
            print(
                f"DELETE to the worker taking the next job: median {statistics.median(free_steps):.2f} steps, "
                f"max {max(free_steps):.2f} steps (target <= 1)"
            )
            print(
                f"next job after a cancel: median {cancel_median:.3f} s; ratio vs warm "
                f"{cancel_median / warm_median:.3f} (target <= 1.05)",
                flush=True,
            )
            killed = []
            for _ in range(2):
                old = server.status()["worker"]["pid"]
                os.kill(old, signal.SIGKILL)
                killed_at = time.time()
                # The job goes to the new worker (a job sent to the dying one would just fail).
                while (worker := server.status()["worker"])["pid"] == old or not worker["alive"]:
                    time.sleep(0.05)
                follow = server.submit(**job, seed=1, wait=True)
                assert follow["status"] == "completed", follow
                killed.append(follow["finished_at"] - killed_at)
        finally:
            server.stop()
    print(
        f"next job after killing the worker (the old cancel: restart, reload, generate): median "
        f"{statistics.median(killed):.3f} s; ratio vs warm {statistics.median(killed) / warm_median:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
