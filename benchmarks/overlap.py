"""Background writes: N queued jobs back to back, with the overlap (the default) against
``--no-background-writes``, measured in one run.

With background writes the worker writes a job's images (PNG encode, metadata, file writes)
while the next job loads, encodes and samples; without, the next job starts only once they are
on disk. The same N jobs (synthetic SD1, one model loaded at start) are queued at once on a real
server started each way, alternately, ``--rounds`` times; the script prints the wall time from
the first submission to the last job's end, the mean writing stage, the mean gap between one
job's end and the next one's start (negative: they overlapped), and the ratio on / off.

    python benchmarks/overlap.py [--jobs 6] [--size 64] [--steps 1] [--batch 1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from harness import Server, link_models  # benchmarks/harness.py: this script's folder is on sys.path


def run(root: Path, models_dir: Path, background: bool, jobs: int, options: dict) -> dict[str, float]:
    """One server, ``jobs`` jobs queued at once; wall time, mean writing stage, mean gap."""
    folder = root / f"{'on' if background else 'off'}-{time.monotonic_ns()}"
    folder.mkdir()
    flag = "--background-writes" if background else "--no-background-writes"
    server = Server(folder, models_dir, "--model", "sd1", flag, "--log-level", "warning", "--preview", "none").start()
    try:
        assert server.submit(**options, seed=99, wait=True)["status"] == "completed"  # warm: loaded, caches hot
        started = time.perf_counter()
        ids = [server.submit(**options, seed=index)["job_id"] for index in range(jobs)]
        done = [server.wait_job(job_id, timeout=3600) for job_id in ids]
        wall = time.perf_counter() - started
        assert all(job["status"] == "completed" for job in done), [job["error"] for job in done]
        by_start = sorted(done, key=lambda job: job["started_at"])
        gaps = [b["started_at"] - a["finished_at"] for a, b in itertools.pairwise(by_start)]
        return {
            "wall": wall,
            "writing": statistics.mean(job["timings"].get("writing", 0.0) for job in done),
            "gap": statistics.mean(gaps) if gaps else 0.0,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="images per job (batch_count)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    options = {
        "width": args.size,
        "height": args.size,
        "steps": args.steps,
        "sampler": "euler",
        "batch_count": args.batch,
    }
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models_dir = link_models(models, root / "models")
        for _ in range(args.rounds):
            for background in (True, False):  # alternate, so a change in the machine's load hits both
                results[background].append(run(root, models_dir, background, args.jobs, options))
    print(
        f"{args.jobs} queued jobs ({args.size}x{args.size}, {args.steps} steps, {args.batch} images each), "
        f"{args.rounds} round(s):"
    )
    for background, name in ((True, "background writes (default)"), (False, "--no-background-writes")):
        rows = results[background]
        print(
            f"  {name}: wall {statistics.median(r['wall'] for r in rows):.2f} s, "
            f"writing stage {statistics.median(r['writing'] for r in rows):.3f} s/job, "
            f"gap between jobs {statistics.median(r['gap'] for r in rows):+.3f} s"
        )
    ratio = statistics.median(r["wall"] for r in results[True]) / statistics.median(r["wall"] for r in results[False])
    print(f"  wall time ratio on / off: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
