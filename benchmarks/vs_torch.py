"""sdrest's time per sampling step against PyTorch's on the same UNet, in the same run.

sdrest side: the synthetic SD1 checkpoint (BK-SDM-Tiny UNet, random weights, f16 file) in its
own process, timed between progress callbacks as in benchmarks/cpu_flags.py. PyTorch side:
benchmarks/torch_unet.py, the same architecture in diffusers, run by ``--python``: a
virtual environment of its own that holds torch and diffusers (PyTorch is never a
dependency of sdrest). Both do two UNet evaluations of batch 1 per step (guidance on).

    python benchmarks/vs_torch.py --python /path/to/torch-venv/bin/python [--device cpu|cuda]
        [--library libstable-diffusion.so] [--sizes 512] [--dtypes fp32,bf16] [--threads 2]
        [--steps 3] [--json OUT]

The ratio printed is PyTorch's seconds per step divided by sdrest's: above 1, sdrest is faster.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_flags import run

from sdrest.synthetic.sd1 import unet_specs

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="a Python with torch and diffusers")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--library", help="SDREST_LIB for the sdrest side (default: the one sdrest finds)")
    parser.add_argument("--sizes", default="512")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps on each side (at least 2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    sizes = [int(side) for side in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        torch_json = Path(tmp) / "torch.json"
        command = [args.python, str(HERE / "torch_unet.py"), "--device", args.device, "--dtypes", args.dtypes]
        command += ["--sizes", args.sizes, "--steps", str(args.steps), "--json", str(torch_json)]
        if args.device == "cpu":
            command += ["--threads", str(args.threads)]
        subprocess.run(command, check=True)
        torch_results = json.loads(torch_json.read_text())
        sdrest = {
            size: run(args.library, size, args.steps + 1, args.threads, Path(tmp) / f"{size}.png") for size in sizes
        }

    expected = unet_specs().numel
    same = "the same" if torch_results["parameters"] == expected else "NOT the same"
    print(f"UNet parameters: diffusers {torch_results['parameters']}, synthetic checkpoint {expected} ({same})")
    print(f"seconds per sampling step on {args.device} (2 UNet evaluations of batch 1); ratio = PyTorch / sdrest")
    rows = []
    for row in torch_results["rows"]:
        mine = sdrest[row["size"]]
        ratio = row["two_batch1"] / mine["wall"]
        rows.append({**row, "sdrest_s_per_step": mine["wall"], "sdrest_cpu_s_per_step": mine["cpu"], "ratio": ratio})
        line = (
            f"  {row['size']}x{row['size']}: sdrest (f16 weights) {mine['wall']:.4f} s, PyTorch {row['dtype']} "
            f"{row['two_batch1']:.4f} s (1 x batch 2: {row['one_batch2']:.4f} s): {ratio:.2f}"
        )
        if args.device == "cpu":  # CPU time: what a busy machine's load leaves out
            theirs = row["two_batch1_cpu"]
            line += f"; CPU time {mine['cpu']:.4f} s vs {theirs:.4f} s: {theirs / mine['cpu']:.2f}"
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps({"torch": torch_results["torch"], "device": args.device, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
