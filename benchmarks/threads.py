"""Thread counts: time per sampling step with 1, 2, ... threads, against one thread, in the same run.

Each count runs in its own process (the synthetic SD1 checkpoint, as benchmarks/cpu_flags.py,
whose child this reuses), the counts taking turns round by round so that a change in the
machine's load hits all of them alike. Printed per count: wall and CPU seconds per step, the
speed-up over one thread (wall) and the parallel efficiency (speed-up / threads).

    python benchmarks/threads.py [--threads 1,2,4] [--size 128] [--steps 3] [--rounds 2]

sdrest's default (``--threads -1``) is the number of physical cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_flags import run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated (the first is the baseline)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="at least 2: the time is taken between steps")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    counts = [int(n) for n in args.threads.split(",")]
    times: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for n in counts:
                times[n].append(run(None, args.size, args.steps, n, Path(tmp) / f"{n}.png"))
                print(
                    f"{n} threads: {times[n][-1]['wall']:.3f} s wall, {times[n][-1]['cpu']:.3f} s CPU per step",
                    flush=True,
                )
    base = statistics.median(t["wall"] for t in times[counts[0]])
    print(
        f"per sampling step ({args.size}x{args.size}), medians of {args.rounds} rounds; baseline {counts[0]} thread(s)"
    )
    for n in counts:
        wall = statistics.median(t["wall"] for t in times[n])
        cpu = statistics.median(t["cpu"] for t in times[n])
        speedup = base / wall
        print(
            f"  {n} threads: wall {wall:.3f} s, CPU {cpu:.3f} s; speed-up {speedup:.2f}x, "
            f"efficiency {speedup / n * counts[0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
