"""Overhead of sdrest's binding over the library's own sd-cli, and RSS over 50 generations.

For the same model (synthetic SD1), parameters and seeds, in one run:
- sd-cli's time per generation: the library's own ``generate_image completed in`` line;
- sdrest's time per generation: wall time of ``Context.generate`` (parameter marshalling,
  the native call, copying the image out and freeing it);
and prints their ratio (target <= 1.02). On a 2-core machine run-to-run noise (a few %) is
larger than the binding's cost, so it also prints the binding overhead proper: sdrest's wall
time divided by the library's own time for the same call. Runs alternate between the two to share any drift
of the machine. Then it generates 50 more images in the same Context and prints RSS before
and after (native buffers freed exactly once means a flat line).

    python benchmarks/overhead.py [--runs 5] [--size 64] [--steps 2] [--rss-generations 50]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdcli import ensure_sd_cli, loaded_library, sd_cli_env

PROMPT = "a lighthouse on a cliff at dusk"
_COMPLETED = re.compile(r"generate_image completed in ([0-9.]+)s")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rss-generations", type=int, default=50)
    args = parser.parse_args()

    from sdrest._native import load_library
    from sdrest.engine import Context
    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    native = load_library()
    sd_cli = ensure_sd_cli(log=lambda m: print(f"# {m}", flush=True))
    env = sd_cli_env(native.path)
    print(f"# same library on both sides: {native.path} / {loaded_library(sd_cli, env)}")
    options = {
        "width": args.size,
        "height": args.size,
        "steps": args.steps,
        "sampler": "euler",
        "scheduler": "discrete",
        "cfg_scale": 7.0,
    }
    cli_args = [
        "-W",
        str(args.size),
        "-H",
        str(args.size),
        "--steps",
        str(args.steps),
        "--sampling-method",
        "euler",
        "--scheduler",
        "discrete",
        "--cfg-scale",
        "7",
        "-t",
        "2",
    ]
    ours: list[float] = []
    ours_native: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Context(model_path=models.checkpoint, n_threads=2) as context:
        context.txt2img(PROMPT, **options, seed=0)  # warm-up: first-call allocations
        for run in range(args.runs):
            seed = 100 + run
            out = subprocess.run(
                [
                    str(sd_cli),
                    "-m",
                    str(models.checkpoint),
                    "-p",
                    PROMPT,
                    "-s",
                    str(seed),
                    "-o",
                    str(Path(tmp) / "cli.png"),
                    *cli_args,
                ],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
            match = _COMPLETED.search(out.stdout + out.stderr)
            if not match:
                raise RuntimeError("sd-cli did not report its generation time")
            theirs.append(float(match.group(1)))
            result = context.txt2img(PROMPT, **options, seed=seed)
            ours.append(result.seconds)
            native = [_COMPLETED.search(line) for line in result.log_tail]
            ours_native.append(float(next(m for m in native if m).group(1)))
            print(
                f"run {run}: sd-cli {theirs[-1]:.3f} s, sdrest {ours[-1]:.3f} s "
                f"(library inside it: {ours_native[-1]:.3f} s)",
                flush=True,
            )
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(
            f"time per generation ({args.size}x{args.size}, {args.steps} steps): sd-cli median "
            f"{statistics.median(theirs):.3f} s, sdrest median {statistics.median(ours):.3f} s"
        )
        print(f"overhead ratio sdrest/sd-cli: {ratio:.3f} (target <= 1.02)")
        binding = statistics.median(o / n for o, n in zip(ours, ours_native, strict=True))
        print(f"binding overhead inside sdrest (wall / the library's own time, same call): {binding:.4f}")

        before = rss_mib()
        for index in range(args.rss_generations):
            context.txt2img(PROMPT, **options, seed=1000 + index)
        after = rss_mib()
        print(
            f"RSS before {args.rss_generations} generations: {before:.1f} MiB, after: {after:.1f} MiB, "
            f"drift {after - before:+.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
