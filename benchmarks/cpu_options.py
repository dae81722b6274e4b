"""Context options on the same generation: per-step sampling time and pixels against a baseline.

The CPU speed study's second step (the first, build flags, is ``cpu_flags.py``): one library,
several ways to load the same synthetic SD1 checkpoint. Each variant runs in its own process,
and the variants take turns round by round (A, B, C, A, B, C, ...), so that a change in the
machine's load hits all of them alike. The first variant is the baseline. Each variant is
``NAME`` or ``NAME:key=value,key=value`` with Context keywords (values: true/false, integers,
or names such as ``q8_0``).

    python benchmarks/cpu_options.py base fa:diffusion_flash_attn=true q8:wtype=q8_0 \\
        [--size 64] [--steps 3] [--rounds 2] [--threads 1]

On a busy machine use ``--threads 1``: its CPU time is the compute alone (see cpu_flags.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

# cpu_flags.py sits beside this script: `python benchmarks/cpu_options.py` finds it only this way.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_flags import run


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    name, _, spec = text.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"variant {name}: {item!r} is not key=value")
        options[key] = {"true": True, "false": False}.get(
            value.lower(), int(value) if value.lstrip("-").isdigit() else value
        )
    return name, options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME[:key=value,...]; the first is the baseline")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="at least 2: the time is taken between steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    variants = dict(parse_variant(text) for text in args.variants)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        images = {name: Path(tmp) / f"{name}.png" for name in variants}
        for _ in range(args.rounds):
            for name, options in variants.items():
                times[name].append(run(None, args.size, args.steps, args.threads, images[name], options))
                print(
                    f"{name}: {times[name][-1]['wall']:.3f} s wall, {times[name][-1]['cpu']:.3f} s CPU per step",
                    flush=True,
                )
        pixels = {name: np.asarray(Image.open(path), dtype=np.int16) for name, path in images.items()}
    baseline = next(iter(variants))
    print(
        f"per sampling step ({args.size}x{args.size}, {args.threads} threads, {args.rounds} rounds), medians; "
        f"baseline {baseline}"
    )
    base = {kind: statistics.median(t[kind] for t in times[baseline]) for kind in ("wall", "cpu")}
    for name, options in variants.items():
        wall, cpu = (statistics.median(t[kind] for t in times[name]) for kind in ("wall", "cpu"))
        diff = int(np.abs(pixels[name] - pixels[baseline]).max())
        print(
            f"  {name} {options}: CPU {cpu:.3f} s ({base['cpu'] / cpu:.2f}x), wall {wall:.3f} s "
            f"({base['wall'] / wall:.2f}x); largest pixel difference {diff}/255"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
