"""PyTorch's time per sampling step for the UNet of sdrest's synthetic SD1 model (random weights).

Runs in the benchmark's own virtual environment (torch + diffusers), never in sdrest's:
benchmarks/vs_torch.py starts it with ``--python`` and compares with sdrest in the same run.

The network is diffusers' ``UNet2DConditionModel`` in the BK-SDM-Tiny layout that
``sdrest.synthetic.sd1`` writes for the native library: model channels 320, channel
multipliers 1/2/4 with cross-attention at every level, one ResBlock per down level (two per
up level), no middle block, 8 heads, CLIP-L context (77 x 768). Its parameter count is printed
so that the caller can check it against the synthetic checkpoint's.

A step is what stable-diffusion.cpp does per step with classifier-free guidance: two UNet
evaluations of batch 1 (conditioned, then unconditioned). The figure with one evaluation of
batch 2 (what diffusers' pipelines do) is printed beside it.

    python benchmarks/torch_unet.py --device cpu|cuda --dtypes fp32,bf16 --sizes 512 [--steps 3]
                                    [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def tiny_sd1_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280),
        layers_per_block=1,
        mid_block_type=None,
        cross_attention_dim=768,
        attention_head_dim=8,
    )


def seconds_per_step(unet: UNet2DConditionModel, size: int, steps: int, device: str, dtype: torch.dtype) -> dict:
    latent = size // 8
    sample = torch.randn(1, 4, latent, latent, device=device, dtype=dtype)
    context = torch.randn(1, 77, 768, device=device, dtype=dtype)
    timestep = torch.tensor([500], device=device)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def two_of_batch_one() -> None:
        unet(sample, timestep, encoder_hidden_states=context)
        unet(sample, timestep, encoder_hidden_states=context)

    sample2, context2 = sample.repeat(2, 1, 1, 1), context.repeat(2, 1, 1)

    def one_of_batch_two() -> None:
        unet(sample2, timestep, encoder_hidden_states=context2)

    figures = {}
    for name, step in (("two_batch1", two_of_batch_one), ("one_batch2", one_of_batch_two)):
        step()  # warm-up: kernels chosen, memory allocated
        sync()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        sync()
        figures[name] = (time.perf_counter() - started) / steps
        # The process's CPU time: on a busy machine with one thread, the compute alone.
        figures[f"{name}_cpu"] = (time.process_time() - cpu_started) / steps
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--sizes", default="512")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    unet = tiny_sd1_unet().eval()
    params = sum(p.numel() for p in unet.parameters())
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads; UNet parameters: {params}")
    results: dict = {"torch": torch.__version__, "device": args.device, "parameters": params, "rows": []}
    with torch.inference_mode():
        for dtype_name in args.dtypes.split(","):
            model = unet.to(device=args.device, dtype=DTYPES[dtype_name])
            for size in (int(side) for side in args.sizes.split(",")):
                figures = seconds_per_step(model, size, args.steps, args.device, DTYPES[dtype_name])
                row = {"dtype": dtype_name, "size": size, **figures}
                results["rows"].append(row)
                print(
                    f"  {dtype_name} {size}x{size}: {figures['two_batch1']:.4f} s per step "
                    f"(2 x batch 1), {figures['one_batch2']:.4f} s (1 x batch 2)",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
