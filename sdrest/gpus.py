"""Which GPUs the server can use, for ``GET /api/v1/system``.

A CPU build uses no GPU, whatever the machine has, and says so. A CUDA build asks NVML (the
NVIDIA driver's management library, through ``nvidia-ml-py``, installed with GPU builds) for
each device's name and memory. Other GPU backends are reported by name only.
"""

from __future__ import annotations

from typing import Any

#: Backends whose devices NVML can describe.
NVML_BACKENDS = ("cuda",)


def gpu_report(backends: list[str]) -> dict[str, Any]:
    """``present``, the GPU ``backends`` built in, ``devices`` (index, name, memory in bytes),
    ``driver`` and a plain ``message`` when there is nothing to list."""
    gpu_backends = [b for b in backends if b != "cpu"]
    report: dict[str, Any] = {"present": False, "backends": gpu_backends, "devices": [], "driver": None,
                              "message": None}
    if not gpu_backends:
        report["message"] = "no GPU: this is a CPU build of stable-diffusion.cpp (see docs/deployment.md for GPU builds)"
        return report
    if not any(b in NVML_BACKENDS for b in gpu_backends):
        report["message"] = f"GPU backend {', '.join(gpu_backends)}: its devices are not listed here"
        return report
    try:
        report["driver"], report["devices"] = _nvml_devices()
    except ImportError:
        report["message"] = "cannot list GPUs: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        return report
    except Exception as exc:  # noqa: BLE001 - pynvml raises its own NVMLError subclasses
        report["message"] = f"cannot list GPUs: NVML: {exc}"
        return report
    report["present"] = bool(report["devices"])
    if not report["devices"]:
        report["message"] = "no NVIDIA GPU found"
    return report


def _nvml_devices() -> tuple[str, list[dict[str, Any]]]:
    import pynvml

    pynvml.nvmlInit()
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append({"index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
                            "memory": {"total": int(memory.total), "free": int(memory.free),
                                       "used": int(memory.used)}})
        return _text(pynvml.nvmlSystemGetDriverVersion()), devices
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    # Older nvidia-ml-py releases answer bytes.
    return value.decode() if isinstance(value, bytes) else value
