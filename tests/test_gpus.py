"""GPU reporting: a CPU build says plainly that it uses none; a CUDA build asks NVML (the
real nvidia-ml-py against whatever driver this machine has) and names its CUDA versions.

Tests marked ``gpu`` run only where an NVIDIA driver is (tests/conftest.py skips them elsewhere)
and need a CUDA build: benchmarks/gpu_check.sh builds one on a GPU machine and runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import assert_real_image, nvidia_driver, pixels
from sdrest._native.buildinfo import build_info
from sdrest.gpus import cuda_from_build, gpu_lines, gpu_report
from server_helpers import FAST, Server, link_models, sd1_server


def test_cpu_build_reports_plainly_no_gpu() -> None:
    report = gpu_report(["cpu"])
    assert report["present"] is False and report["backends"] == [] and report["devices"] == []
    assert report["message"].startswith("no GPU: this is a CPU build")


def test_other_gpu_backends_are_named_without_devices() -> None:
    report = gpu_report(["cpu", "vulkan"])
    assert report["backends"] == ["vulkan"] and report["devices"] == [] and "vulkan" in report["message"]


@pytest.mark.skipif(nvidia_driver(), reason="this machine has an NVIDIA driver (see the gpu test)")
def test_cuda_build_without_a_driver_says_why() -> None:
    report = gpu_report(["cpu", "cuda"])
    assert report["present"] is False and report["devices"] == []
    assert report["message"].startswith("cannot list GPUs: NVML: ")


@pytest.mark.gpu
def test_cuda_build_lists_each_gpu_with_its_memory() -> None:
    report = gpu_report(["cpu", "cuda"])
    assert report["present"] is True and report["driver"] and report["message"] is None
    for index, device in enumerate(report["devices"]):
        assert device["index"] == index and device["name"]
        memory = device["memory"]
        assert memory["total"] > 0 and 0 <= memory["free"] <= memory["total"]
        assert memory["used"] <= memory["total"]


def test_cuda_build_report_names_its_cuda_without_a_driver() -> None:
    cuda = cuda_from_build({"backends": ["cpu", "cuda"], "cuda_version": "13.5.37", "cuda_toolkit": "wheels"}, None)
    report = gpu_report(["cpu", "cuda"], cuda)
    assert report["cuda"]["build"] == "13.5.37" and report["cuda"]["toolkit"] == "wheels"
    assert report["cuda"]["runtime"] is None  # no worker has loaded one
    if not nvidia_driver():
        assert report["cuda"]["driver"] is None and report["present"] is False
    lines = gpu_lines(["cpu", "cuda"], cuda)
    assert lines[0].startswith("  cuda: built with 13.5.37 (NVIDIA's CUDA wheels), runtime not loaded")


def test_cpu_build_report_has_no_cuda_section() -> None:
    assert "cuda" not in gpu_report(["cpu"], cuda_from_build({"backends": ["cpu"]}, None))
    assert gpu_lines(["cpu"]) == [
        ("  gpu: no GPU: this is a CPU build of stable-diffusion.cpp (see docs/deployment.md for GPU builds)")
    ]


# --- On a GPU, with a CUDA build (benchmarks/gpu_check.sh builds one and runs these) ---------------

#: Same seed, CUDA against the CPU backend: the largest mean difference per pixel channel allowed
#: (of 255), and the lowest PSNR. GPU kernels sum in another order (and cuBLAS may use TF32/F16
#: accumulators), so the images agree closely without being bit-identical.
CUDA_CPU_MEAN_ABS = 4.0
CUDA_CPU_MIN_PSNR = 30.0
#: What a worker may keep on the GPU once nothing is loaded: its CUDA context and cuBLAS handles.
CONTEXT_ALLOWANCE = 1 << 30

GPU_JOB = {**FAST, "width": 256, "height": 256, "steps": 4, "seed": 11}
CPU_CHILD = r"""
import sys
from sdrest.engine import Context
from sdrest.synthetic import ensure_synthetic_models
ctx = Context(model_path=ensure_synthetic_models().checkpoint, n_threads=8)
ctx.txt2img(sys.argv[2], width=int(sys.argv[3]), height=int(sys.argv[3]), steps=int(sys.argv[4]),
            sampler="euler", seed=int(sys.argv[5])).images[0].save(sys.argv[1])
"""


def _cuda_build() -> None:
    if "cuda" not in build_info().get("backends", []):
        pytest.fail("the gpu tests need a CUDA build of sdrest (benchmarks/gpu_check.sh builds one)")


def _gpu_used(index: int = 0) -> int:
    import pynvml

    pynvml.nvmlInit()
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used)
    finally:
        pynvml.nvmlShutdown()


def _gpu_count() -> int:
    import pynvml

    pynvml.nvmlInit()
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


@pytest.fixture(scope="module")
def cuda_server(models, tmp_path_factory) -> Iterator[Server]:
    _cuda_build()
    yield from sd1_server(models, tmp_path_factory, "cuda")


@pytest.mark.gpu
def test_cuda_txt2img_matches_cpu_for_the_same_seed(sd1, tmp_path: Path) -> None:
    _cuda_build()
    cpu_lib = os.environ.get("SDREST_CPU_LIB")
    if not cpu_lib:
        pytest.fail("set SDREST_CPU_LIB to a CPU build's libstable-diffusion.so (benchmarks/gpu_check.sh does)")
    size, steps, seed, prompt = 256, 4, 11, "a lighthouse at dusk"
    cuda_image = sd1.txt2img(prompt, width=size, height=size, steps=steps, sampler="euler", seed=seed).images[0]
    out = tmp_path / "cpu.png"
    subprocess.run(
        [sys.executable, "-c", CPU_CHILD, str(out), prompt, str(size), str(steps), str(seed)],
        env={**os.environ, "SDREST_LIB": cpu_lib},
        check=True,
        timeout=600,
    )
    cpu_image = Image.open(out).convert("RGB")
    assert_real_image(cuda_image, (size, size))
    a, b = pixels(cuda_image), pixels(cpu_image)
    mean_abs = float(np.abs(a - b).mean())
    mse = float(((a - b) ** 2).mean())
    psnr = 10 * np.log10(255.0**2 / mse) if mse else float("inf")
    print(f"CUDA vs CPU, seed {seed}: mean |diff| {mean_abs:.3f}/255, PSNR {psnr:.1f} dB")
    assert mean_abs <= CUDA_CPU_MEAN_ABS and psnr >= CUDA_CPU_MIN_PSNR


@pytest.mark.gpu
def test_system_names_cuda_versions_and_the_gpus(cuda_server: Server) -> None:
    cuda_server.wait_job(cuda_server.submit(**GPU_JOB)["job_id"])
    gpu = cuda_server.get("/api/v1/system").json()["gpu"]
    assert gpu["present"] is True and gpu["backends"] == ["cuda"] and gpu["devices"]
    assert gpu["cuda"]["build"] == build_info()["cuda_version"]
    assert gpu["cuda"]["runtime"] and gpu["cuda"]["runtime"].split(".")[0] == build_info()["cuda_version"].split(".")[0]
    assert gpu["cuda"]["driver"]
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or shutil.which("sdrest") or "sdrest"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120, check=True)
    assert f"cuda: built with {build_info()['cuda_version']}" in version.stdout
    assert f"gpu 0: {gpu['devices'][0]['name']}" in version.stdout


def _cancel_at_step_two(server: Server) -> None:
    """Queue a long 1024x1024 job, cancel it once it samples, and wait for its end."""
    big = server.submit(**{**GPU_JOB, "width": 1024, "height": 1024, "steps": 150})  # the API's most
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = server.get(f"/api/v1/generate/{big['job_id']}").json()
        if (state.get("progress") or {}).get("step", 0) >= 2:
            break
        time.sleep(0.05)
    assert server.delete(f"/api/v1/generate/{big['job_id']}").status_code == 200
    assert server.wait_job(big["job_id"])["status"] == "cancelled"


@pytest.mark.gpu
def test_vram_is_released_after_unload_and_no_cancel_leaks_it(cuda_server: Server, models) -> None:
    weights = models.checkpoint.stat().st_size  # what loading the model puts on the GPU, about
    unload = cuda_server.post("/api/v1/models/unload", json={"wait": True})
    assert unload.status_code == 200, unload.text
    empty = _gpu_used()
    job = cuda_server.wait_job(cuda_server.submit(**GPU_JOB)["job_id"])
    assert job["status"] == "completed", job
    loaded = _gpu_used()
    assert loaded - empty >= weights // 2  # the model's weights went to the GPU

    # ggml's CUDA backend keeps its memory pool at its peak (the 1024x1024 attention's temporary
    # buffers) until the model is unloaded, so the first cancel ends above `loaded` (the GPU run
    # measured 13.6 GB against 5.1 GB). A leak would add to it at each cancel: the second cancel
    # of the same job must end where the first did.
    _cancel_at_step_two(cuda_server)
    after_first = _gpu_used()
    _cancel_at_step_two(cuda_server)
    after_second = _gpu_used()

    unload = cuda_server.post("/api/v1/models/unload", json={"wait": True})
    assert unload.status_code == 200, unload.text
    after_unload = _gpu_used()
    print(
        f"GPU memory used (MiB): empty {empty >> 20}, loaded {loaded >> 20}, after a 1024^2 cancel "
        f"{after_first >> 20}, after a second one {after_second >> 20}, after unload {after_unload >> 20}"
    )
    assert after_second <= after_first + (256 << 20)
    assert loaded - after_unload >= weights * 8 // 10  # the weights left the GPU
    assert after_unload - empty <= CONTEXT_ALLOWANCE  # and so did the pool


@pytest.mark.gpu
def test_an_oversized_request_fails_out_of_memory_and_the_next_job_succeeds(cuda_server: Server) -> None:
    # 4096x4096 with SD1's attention: its first attention alone asks for far more than any GPU has.
    huge = cuda_server.wait_job(
        cuda_server.submit(**{**GPU_JOB, "width": 4096, "height": 4096, "steps": 1})["job_id"], timeout=600
    )
    assert huge["status"] == "failed", huge
    assert huge["error"]["code"] == "out_of_memory", huge["error"]
    assert "smaller size" in huge["error"]["message"]
    after = cuda_server.wait_job(cuda_server.submit(**GPU_JOB)["job_id"])
    assert after["status"] == "completed", after
    assert cuda_server.status()["worker"]["crashes"] == 0


@pytest.mark.gpu
def test_two_workers_on_two_devices(models, tmp_path: Path) -> None:
    _cuda_build()
    if _gpu_count() < 2:
        pytest.skip("one GPU on this machine: two workers on two devices need two")
    servers = []
    try:
        for device in (0, 1):
            root = tmp_path / f"gpu{device}"
            servers.append(
                Server(
                    root,
                    link_models(models, root / "models"),
                    "--model",
                    "sd1",
                    # NVML numbers GPUs in PCI order; make CUDA's numbering match.
                    env={"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": str(device)},
                ).start()
            )
        before = [_gpu_used(0), _gpu_used(1)]
        jobs = [server.submit(**GPU_JOB) for server in servers]
        done = [server.wait_job(job["job_id"]) for server, job in zip(servers, jobs, strict=True)]
        assert all(job["status"] == "completed" for job in done), done
        after = [_gpu_used(0), _gpu_used(1)]
        assert after[0] - before[0] > 256 << 20 and after[1] - before[1] > 256 << 20  # each used its own GPU
    finally:
        for server in servers:
            server.stop()
