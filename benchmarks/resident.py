"""Jobs alternating between two models: --max-loaded-models 2 against 1, measured in one run.

Two synthetic SD1 checkpoints (hard links under two names: two models to the worker). The
same jobs (alternating sd1, sd1b) go through a real server started with
``--max-loaded-models 2`` and then with ``--max-loaded-models 1``; the script counts the jobs
that had a loading stage (target with 2: one per model) and compares the total time.

    python benchmarks/resident.py [--jobs 10] [--size 64] [--steps 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harness import Server, link_models  # benchmarks/harness.py: this script's folder is on sys.path


def run(root: Path, models_dir: Path, loaded: int, jobs: int, options: dict) -> tuple[int, float]:
    (root / f"n{loaded}").mkdir()
    server = Server(
        root / f"n{loaded}",
        models_dir,
        "--max-loaded-models",
        str(loaded),
        "--log-level",
        "warning",
        "--preview",
        "none",
    ).start()
    try:
        loads = 0
        started = time.perf_counter()
        for index in range(jobs):
            job = server.submit(**options, model="sd1" if index % 2 == 0 else "sd1b", seed=index, wait=True)
            assert job["status"] == "completed", job
            loads += "loading" in job["timings"]
        return loads, time.perf_counter() - started
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()

    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    options = {"width": args.size, "height": args.size, "steps": args.steps, "sampler": "euler"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models_dir = link_models(models, root / "models")
        os.link(models.checkpoint, models_dir / "checkpoints" / "sd1b.safetensors")
        loads_two, seconds_two = run(root, models_dir, 2, args.jobs, options)
        loads_one, seconds_one = run(root, models_dir, 1, args.jobs, options)
    print(f"{args.jobs} jobs alternating two models ({args.size}x{args.size}, {args.steps} steps):")
    print(f"  --max-loaded-models 2: {loads_two} loads (target 2), {seconds_two:.2f} s")
    print(f"  --max-loaded-models 1: {loads_one} loads, {seconds_one:.2f} s")
    print(f"  time ratio N=2 / N=1: {seconds_two / seconds_one:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
