"""Two builds of the native library on the same generation: per-step sampling time and pixels.

Each library runs in its own process (``SDREST_LIB``), alternating A, B, A, B, ... so that a
change in the machine's load hits both alike. The per-step time is taken between the first
and the last progress callback (sampling only: no text encoding, no decoding), after a
one-step warm-up in the same process, as wall time and as the process's CPU time. On a busy
machine use ``--threads 1``: a single thread never spin-waits for a descheduled peer, so its CPU
time is the compute alone, whatever else runs. The images of the two builds are compared pixel by pixel.

    python benchmarks/cpu_flags.py BASELINE.so CANDIDATE.so [--size 64] [--steps 3] [--rounds 2]

Example: the default CPU build against one configured with -DGGML_LLAMAFILE=ON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = r"""
import json, sys, time
from sdrest.engine import Context
from sdrest.synthetic import ensure_synthetic_models
size, steps, threads, out, options = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = Context(model_path=ensure_synthetic_models().checkpoint, n_threads=threads, **json.loads(options))
ctx.txt2img("warm up", width=size, height=size, steps=1, sampler="euler", seed=1)
marks = []
result = ctx.txt2img("a lighthouse at dusk", width=size, height=size, steps=steps, sampler="euler", seed=7,
                     on_progress=lambda step, total, s: marks.append((time.perf_counter(), time.process_time()))
                     if step > 0 else None)
result.images[0].save(out)
n = len(marks) - 1
print(json.dumps({"wall": (marks[-1][0] - marks[0][0]) / n, "cpu": (marks[-1][1] - marks[0][1]) / n}))
"""


def run(
    library: str | None, size: int, steps: int, threads: int, out: Path, options: dict[str, object] | None = None
) -> dict[str, float]:
    """One process: load the synthetic SD1 checkpoint with ``options`` (Context keywords), warm
    up, and return the wall and CPU seconds per sampling step. ``library``: SDREST_LIB, or None
    for the one sdrest finds by itself."""
    env = {**os.environ, "SDREST_LIB": library} if library else dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(size), str(steps), str(threads), str(out), json.dumps(options or {})],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline")
    parser.add_argument("candidate")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="at least 2: the time is taken between steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    times: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
    with tempfile.TemporaryDirectory() as tmp:
        images = {name: Path(tmp) / f"{name}.png" for name in times}
        for _ in range(args.rounds):
            for name, library in (("baseline", args.baseline), ("candidate", args.candidate)):
                times[name].append(run(library, args.size, args.steps, args.threads, images[name]))
                print(
                    f"{name}: {times[name][-1]['wall']:.3f} s wall, {times[name][-1]['cpu']:.3f} s CPU per step",
                    flush=True,
                )
        a, b = (np.asarray(Image.open(images[name]), dtype=np.int16) for name in ("baseline", "candidate"))
        diff = int(np.abs(a - b).max())
    print(
        f"per sampling step ({args.size}x{args.size}, {args.threads} threads), medians; largest pixel "
        f"difference {diff}/255"
    )
    for kind in ("wall", "cpu"):
        base = statistics.median(t[kind] for t in times["baseline"])
        cand = statistics.median(t[kind] for t in times["candidate"])
        print(f"  {kind}: baseline {base:.3f} s, candidate {cand:.3f} s; speed-up {base / cand:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
