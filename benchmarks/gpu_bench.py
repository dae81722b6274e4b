"""Seconds per sampling step on the GPU against the CPU backend, in the same run.

The CUDA build and a CPU build of the same source each run in their own process
(``SDREST_LIB``), alternating, on the synthetic SD1 checkpoint (the library's smallest SD1 UNet,
sdrest.synthetic) at 512x512 (SD1's size) and 1024x1024 (SDXL's size: no synthetic SDXL UNet
exists, so this is the SD1 UNet's work at SDXL's resolution). The per-step time is taken between
the first and the last progress callback after a warm-up, as in benchmarks/cpu_flags.py, whose
child process this reuses.

    python benchmarks/gpu_bench.py CUDA.so CPU.so [--sizes 512,1024] [--cpu-sizes 512] [--steps 6]
                                   [--rounds 2] [--threads 16] [--json OUT]

benchmarks/gpu_check.sh runs it on the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_flags import run

LABELS = {512: "sd1-512", 1024: "sdxl-1024"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cuda")
    parser.add_argument("cpu")
    parser.add_argument("--steps", type=int, default=6, help="at least 2: the time is taken between steps")
    parser.add_argument("--cpu-steps", type=int, default=3, help="steps on the (slow) CPU side")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--sizes", default="512,1024", help="image sides, comma-separated")
    parser.add_argument("--cpu-sizes", help="sizes also run on the CPU (default: all; 1024x1024 takes minutes there)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    figures: dict[str, dict[str, float | None]] = {}
    cpu_sizes = {int(side) for side in (args.cpu_sizes or args.sizes).split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(side) for side in args.sizes.split(",")):
            label = LABELS.get(size, f"{size}")
            times: dict[str, list[float]] = {"cuda": [], "cpu": []}
            for _ in range(args.rounds):
                for backend, library, steps in (("cuda", args.cuda, args.steps), ("cpu", args.cpu, args.cpu_steps)):
                    if backend == "cpu" and size not in cpu_sizes:
                        continue
                    result = run(library, size, steps, args.threads, Path(tmp) / f"{backend}.png")
                    times[backend].append(result["wall"])
                    print(f"{label} {backend}: {result['wall']:.4f} s per step", flush=True)
            cuda = statistics.median(times["cuda"])
            cpu = statistics.median(times["cpu"]) if times["cpu"] else None
            speedup = cpu / cuda if cpu is not None else None
            figures[label] = {"size": size, "cuda_s_per_step": cuda, "cpu_s_per_step": cpu, "speedup": speedup}
    print(f"seconds per sampling step, medians of {args.rounds} rounds (CPU: {args.threads} threads)")
    for label, f in figures.items():
        line = f"  {label} ({f['size']}x{f['size']}): CUDA {f['cuda_s_per_step']:.4f} s"
        if f["cpu_s_per_step"] is not None:
            line += f", CPU {f['cpu_s_per_step']:.3f} s; CUDA is {f['speedup']:.1f}x faster"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
