"""Model library scan time: 1,000 files, cold (every header read) and warm (all cached).

The issue's target: a scan of 1,000 files takes under 1 s when hashes and detections are
cached. This writes ``--files`` small but valid model files (tiny safetensors headers:
SD1 checkpoints, LoRAs and VAEs in nested category folders, tensor data as sparse
holes), hashes them once into a SQLite :class:`HashCache` (so the warm scan also reports
cached hashes, as a real library would), then times one cold scan of a fresh
:class:`ModelLibrary` and ``--warm-runs`` warm rescans of the same library.

    PYTHONPATH=. python benchmarks/scan.py [--files 1000] [--warm-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sdrest.models.hashing import HashCache
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders, ModelType
from sdrest.synthetic.headers import kohya_lora, sd1_checkpoint, sd_vae, write_sparse_safetensors


def populate(models: Path, count: int) -> None:
    kinds = [
        ("checkpoints", sd1_checkpoint()),
        (
            "lora",
            kohya_lora(
                {
                    f"lora_unet_down_blocks_0_attentions_0_transformer_blocks_{i}_attn2_to_k": (768, 320)
                    for i in range(20)
                }
            ),
        ),
        ("vae", sd_vae(prefix="")),
    ]
    for i in range(count):
        folder, tensors = kinds[i % len(kinds)]
        write_sparse_safetensors(models / folder / f"cat{i % 10}" / f"model_{i:04d}.safetensors", tensors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        populate(models, args.files)
        folders = ModelFolders.build(models)
        with HashCache(Path(tmp) / "hashes.sqlite") as cache:
            for path in models.rglob("*.safetensors"):
                cache.get_or_compute(path)

            library = ModelLibrary(folders, cache)
            started = time.perf_counter()
            cold = library.scan()
            cold_s = time.perf_counter() - started

            warm_times = []
            for _ in range(args.warm_runs):
                started = time.perf_counter()
                warm = library.scan()
                warm_times.append(time.perf_counter() - started)

    warm_s = statistics.median(warm_times)
    listed = len(cold.entries)
    assert listed == args.files, f"listed {listed} of {args.files} files"
    assert warm.detected == 0 and all(e.sha256 for e in warm.entries)
    arch = {e.detection.architecture for e in warm.entries if e.type == ModelType.CHECKPOINT}
    print(f"files: {listed} (checkpoint architectures: {sorted(arch)})")
    print(f"cold scan (headers read: {cold.detected}): {cold_s * 1000:.1f} ms")
    print(
        f"warm scan (median of {args.warm_runs}, headers read: {warm.detected}): {warm_s * 1000:.1f} ms "
        f"(min {min(warm_times) * 1000:.1f}, max {max(warm_times) * 1000:.1f})"
    )
    print(f"cold/warm ratio: {cold_s / warm_s:.1f}x")
    print(f"target: warm < 1000 ms for 1,000 files -> {'OK' if warm_s < 1.0 else 'MISSED'}")
    return 0 if warm_s < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
