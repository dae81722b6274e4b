"""GPU reporting: a CPU build says plainly that it uses none; a CUDA build asks NVML (the
real nvidia-ml-py against whatever driver this machine has)."""

from __future__ import annotations

import pytest

from sdrest.gpus import gpu_report


def _nvidia_driver() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_cpu_build_reports_plainly_no_gpu() -> None:
    report = gpu_report(["cpu"])
    assert report["present"] is False and report["backends"] == [] and report["devices"] == []
    assert report["message"].startswith("no GPU: this is a CPU build")


def test_other_gpu_backends_are_named_without_devices() -> None:
    report = gpu_report(["cpu", "vulkan"])
    assert report["backends"] == ["vulkan"] and report["devices"] == [] and "vulkan" in report["message"]


@pytest.mark.skipif(_nvidia_driver(), reason="this machine has an NVIDIA driver (see the gpu test)")
def test_cuda_build_without_a_driver_says_why() -> None:
    report = gpu_report(["cpu", "cuda"])
    assert report["present"] is False and report["devices"] == []
    assert report["message"].startswith("cannot list GPUs: NVML: ")


@pytest.mark.gpu
@pytest.mark.skipif(not _nvidia_driver(), reason="needs an NVIDIA GPU and driver")
def test_cuda_build_lists_each_gpu_with_its_memory() -> None:
    report = gpu_report(["cpu", "cuda"])
    assert report["present"] is True and report["driver"] and report["message"] is None
    for index, device in enumerate(report["devices"]):
        assert device["index"] == index and device["name"]
        memory = device["memory"]
        assert 0 < memory["total"] and 0 <= memory["free"] <= memory["total"]
        assert memory["used"] <= memory["total"]
