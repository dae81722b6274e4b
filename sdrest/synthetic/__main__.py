"""``python -m sdrest.synthetic [CACHE_DIR] [--no-vae-checkpoint] [--video]``

Generates (or finds) the synthetic models and prints their paths as JSON, so
they can be produced ahead of a test run or inspected by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from . import default_cache_dir, ensure_synthetic_models


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sdrest.synthetic", description=__doc__.splitlines()[2])
    ap.add_argument("cache_dir", nargs="?", type=Path, default=None, help=f"default: {default_cache_dir()}")
    ap.add_argument("--no-vae-checkpoint", action="store_true", help="also write the checkpoint without VAE")
    ap.add_argument("--video", action="store_true", help="also write the Wan video model and its TAEHV")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    models = ensure_synthetic_models(
        args.cache_dir, with_no_vae_checkpoint=args.no_vae_checkpoint, with_video=args.video
    )
    out: dict[str, object] = {k: (str(v) if v is not None else None) for k, v in dataclasses.asdict(models).items()}
    out["lora_name"] = models.lora_name
    out["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
