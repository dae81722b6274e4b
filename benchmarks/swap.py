"""Model swap time through the server's queue, next to the bare engine load of the same file.

Two synthetic SD1 checkpoints (hard links with different names, so every swap really reloads);
alternating POST /api/v1/models/load with wait=true, then the same loads with the engine alone.

    python benchmarks/swap.py [--swaps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import requests

from harness import Server, link_models  # benchmarks/harness.py: this script's folder is on sys.path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=4)
    args = parser.parse_args()

    from sdrest.engine import Context
    from sdrest.synthetic import ensure_synthetic_models

    models = ensure_synthetic_models()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models_dir = link_models(models, root / "models")
        os.link(models.checkpoint, models_dir / "checkpoints" / "sd1b.safetensors")
        server = Server(root, models_dir, "--model", "sd1").start()
        try:
            swaps = []
            for index in range(args.swaps):
                name = "sd1b" if index % 2 == 0 else "sd1"
                started = time.perf_counter()
                job = requests.post(
                    server.url("/api/v1/models/load"), json={"model": name, "wait": True}, timeout=600
                ).json()
                swaps.append(time.perf_counter() - started)
                assert job["status"] == "completed", job
                print(f"swap to {name}: {swaps[-1]:.2f} s (loading stage {job['timings'].get('loading', 0):.2f} s)")
        finally:
            server.stop()
        bare = []
        for _ in range(args.swaps):
            started = time.perf_counter()
            Context(model_path=models.checkpoint, n_threads=2, vae_decode_only=False).close()
            bare.append(time.perf_counter() - started)
    print(
        f"swap through the queue: median {statistics.median(swaps):.2f} s; bare engine load: median "
        f"{statistics.median(bare):.2f} s; ratio {statistics.median(swaps) / statistics.median(bare):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
