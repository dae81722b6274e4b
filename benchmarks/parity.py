"""Parity: sdrest's pixels equal those written by the library's own sd-cli.

Same model file (the synthetic SD1), same parameters, same seeds, same library binary.
Prints one line per case and exits non-zero on any difference.

    python benchmarks/parity.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdcli import ensure_sd_cli, loaded_library, sd_cli_env

CASES = [
    # (name, sdrest options, sd-cli arguments)
    (
        "txt2img euler 64x64 1 step seed 42",
        {
            "width": 64,
            "height": 64,
            "steps": 1,
            "sampler": "euler",
            "scheduler": "discrete",
            "cfg_scale": 7.0,
            "seed": 42,
        },
        [
            "-W",
            "64",
            "-H",
            "64",
            "--steps",
            "1",
            "--sampling-method",
            "euler",
            "--scheduler",
            "discrete",
            "--cfg-scale",
            "7",
            "-s",
            "42",
        ],
    ),
    (
        "txt2img euler_a 64x128 3 steps cfg 5 seed 1234 with negative prompt",
        {
            "width": 64,
            "height": 128,
            "steps": 3,
            "sampler": "euler_a",
            "scheduler": "karras",
            "cfg_scale": 5.0,
            "seed": 1234,
            "negative_prompt": "blurry",
        },
        [
            "-W",
            "64",
            "-H",
            "128",
            "--steps",
            "3",
            "--sampling-method",
            "euler_a",
            "--scheduler",
            "karras",
            "--cfg-scale",
            "5",
            "-s",
            "1234",
            "-n",
            "blurry",
        ],
    ),
]
PROMPT = "a lighthouse on a cliff at dusk"


def main() -> int:
    from sdrest._native import load_library
    from sdrest.engine import Context
    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    native = load_library()
    sd_cli = ensure_sd_cli(log=lambda m: print(f"# {m}", flush=True))
    env = sd_cli_env(native.path)
    print(f"# sdrest library: {native.path}")
    print(f"# sd-cli loads:   {loaded_library(sd_cli, env)}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp, Context(model_path=models.checkpoint, n_threads=2) as context:
        for name, options, cli_args in CASES:
            ours = np.asarray(context.txt2img(PROMPT, **options).images[0])
            out = Path(tmp) / "cli.png"
            subprocess.run(
                [str(sd_cli), "-m", str(models.checkpoint), "-p", PROMPT, "-t", "2", "-o", str(out), *cli_args],
                check=True,
                env=env,
                capture_output=True,
            )
            theirs = np.asarray(Image.open(out).convert("RGB"))
            same = ours.shape == theirs.shape and np.array_equal(ours, theirs)
            failures += not same
            detail = (
                "identical pixels"
                if same
                else (
                    f"DIFFERENT (shapes {ours.shape} vs {theirs.shape}; "
                    f"max abs diff "
                    f"{np.abs(ours.astype(int) - theirs.astype(int)).max() if ours.shape == theirs.shape else '-'})"
                )
            )
            print(f"{name}: {detail}")
    print(f"parity: {len(CASES) - failures}/{len(CASES)} cases identical")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
