"""Which GPUs the server can use, for ``GET /api/v1/system``.

A CPU build uses no GPU, whatever the machine has, and says so. A CUDA build asks NVML (the
NVIDIA driver's management library, through ``nvidia-ml-py``, installed with GPU builds) for
each device's name and memory. Other GPU backends are reported by name only. A CUDA build also
says which CUDA it was built with (``build_info.json``), the runtime it loaded and the newest CUDA
the driver supports.
"""

from __future__ import annotations

from typing import Any

#: Backends whose devices NVML can describe.
NVML_BACKENDS = ("cuda",)


def gpu_report(backends: list[str], cuda: dict[str, Any] | None = None) -> dict[str, Any]:
    """``present``, the GPU ``backends`` built in, ``devices`` (index, name, memory in bytes),
    ``driver`` and a plain ``message`` when there is nothing to list. A CUDA build also gets
    ``cuda``: the ``cuda`` mapping given (``build``, ``toolkit``, ``runtime``) plus ``driver``,
    the newest CUDA version the driver supports."""
    gpu_backends = [b for b in backends if b != "cpu"]
    report: dict[str, Any] = {
        "present": False,
        "backends": gpu_backends,
        "devices": [],
        "driver": None,
        "message": None,
    }
    if "cuda" in gpu_backends:
        report["cuda"] = {"build": None, "toolkit": None, "runtime": None, **(cuda or {}), "driver": None}
    if not gpu_backends:
        report["message"] = (
            "no GPU: this is a CPU build of stable-diffusion.cpp (see docs/deployment.md for GPU builds)"
        )
        return report
    if not any(b in NVML_BACKENDS for b in gpu_backends):
        report["message"] = f"GPU backend {', '.join(gpu_backends)}: its devices are not listed here"
        return report
    try:
        report["driver"], cuda_driver, report["devices"] = _nvml_devices()
        if "cuda" in report:
            report["cuda"]["driver"] = cuda_driver
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


def cuda_from_build(info: dict[str, Any], runtime: str | None) -> dict[str, Any]:
    """The ``cuda`` argument of :func:`gpu_report` from a build record and the loaded runtime."""
    return {"build": info.get("cuda_version") or None, "toolkit": info.get("cuda_toolkit") or None, "runtime": runtime}


def gpu_lines(backends: list[str], cuda: dict[str, Any] | None = None) -> list[str]:
    """:func:`gpu_report` as lines for ``sdrest --version``."""
    report = gpu_report(backends, cuda)
    lines = []
    if "cuda" in report:
        c = report["cuda"]
        toolkit = {"wheels": "NVIDIA's CUDA wheels", "system": "a system toolkit"}.get(c["toolkit"] or "", c["toolkit"])
        lines.append(
            f"  cuda: built with {c['build'] or '?'}{f' ({toolkit})' if toolkit else ''}, "
            f"runtime {c['runtime'] or 'not loaded'}, driver supports {c['driver'] or '?'}"
        )
    for device in report["devices"]:
        lines.append(
            f"  gpu {device['index']}: {device['name']}, "
            f"{device['memory']['total'] / 2**30:.1f} GiB (driver {report['driver']})"
        )
    if report["message"]:
        lines.append(f"  gpu: {report['message']}")
    return lines


def _nvml_devices() -> tuple[str, str, list[dict[str, Any]]]:
    import pynvml

    pynvml.nvmlInit()
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                {
                    "index": index,
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "memory": {"total": int(memory.total), "free": int(memory.free), "used": int(memory.used)},
                }
            )
        cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())  # e.g. 13000 for 13.0
        return (_text(pynvml.nvmlSystemGetDriverVersion()), f"{cuda // 1000}.{cuda % 1000 // 10}", devices)
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    # Older nvidia-ml-py releases answer bytes.
    return value.decode() if isinstance(value, bytes) else value
