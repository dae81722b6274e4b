"""The CUDA runtime a CUDA build of the native library needs, found before the library is opened.

A CUDA build links ``libcudart.so.<major>`` and ``libcublas.so.<major>`` (and cuBLAS's
``libcublasLt``). Built with NVIDIA's wheels, the library's RPATH points at the ``sdrest[cuda]``
extra's wheels (``site-packages/nvidia/cu<major>/lib``); a system toolkit's copies are found on
the loader's usual paths. Loading them here first, by full path where the wheels are installed,
turns the linker's bare "cannot open shared object file" into an error that names the wheel to
install.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from sdrest.errors import NativeLibraryError

#: The CUDA major version of the runtime wheels in the ``sdrest[cuda]`` extra (pyproject.toml).
WHEEL_CUDA_MAJOR = "13"
#: (library, the PyPI wheel that ships it), in load order (cuBLAS needs cuBLASLt).
RUNTIME_LIBRARIES = (
    ("libcudart", "nvidia-cuda-runtime"),
    ("libcublasLt", "nvidia-cublas"),
    ("libcublas", "nvidia-cublas"),
)


def cuda_major(info: dict[str, Any]) -> str | None:
    """The CUDA major version a build recorded, or None for a build without CUDA."""
    if "cuda" not in info.get("backends", []):
        return None
    version = str(info.get("cuda_version") or "")
    return version.split(".")[0] or None


def wheel_library_dirs(major: str) -> list[Path]:
    """``nvidia/cu<major>/lib`` folders of installed NVIDIA wheels (``nvidia`` is a namespace
    package, so each site-packages on the path may hold part of it)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [
        Path(p) / f"cu{major}" / "lib"
        for p in spec.submodule_search_locations
        if (Path(p) / f"cu{major}" / "lib").is_dir()
    ]


def preload_cuda_runtime(info: dict[str, Any]) -> list[str]:
    """Open the CUDA runtime libraries a CUDA build needs (a no-op for other builds) and return
    where each came from; raise :class:`NativeLibraryError` naming the wheel that is missing."""
    major = cuda_major(info)
    if major is None or not sys.platform.startswith("linux"):
        return []
    dirs = wheel_library_dirs(major)
    opened = []
    for stem, wheel in RUNTIME_LIBRARIES:
        soname = f"{stem}.so.{major}"
        candidates = [str(d / soname) for d in dirs if (d / soname).is_file()] + [soname]
        errors = []
        for candidate in candidates:
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                errors.append(str(exc))
                continue
            opened.append(candidate)
            break
        else:
            looked = ", ".join(str(d) for d in dirs) or "no nvidia wheels installed"
            # The sdrest[cuda] extra carries CUDA 13's wheels; another major comes from its toolkit.
            fix = (
                f"Install NVIDIA's {wheel} wheel: pip install 'sdrest[cuda]' (or `pip install {wheel}`), "
                f"or put a CUDA {major} toolkit's libraries on the library path."
                if major == WHEEL_CUDA_MAJOR
                else f"Put the CUDA {major} toolkit's libraries it was built with on the library path "
                f"(ldconfig or LD_LIBRARY_PATH)."
            )
            raise NativeLibraryError(
                f"this sdrest was built with CUDA {info.get('cuda_version')} and needs {soname}, "
                f"which was not found (wheels' folders: {looked}; the system's library path: "
                f"{errors[-1]}). {fix} A GPU-less machine can use a CPU build instead."
            )
    return opened


def runtime_version() -> str | None:
    """The CUDA runtime's version as ``cudaRuntimeGetVersion`` reports it (e.g. ``13.5``), or
    None when this process has no CUDA runtime loaded (it is never loaded just to ask)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    paths = {
        fields[-1]
        for fields in (line.split() for line in maps.splitlines())
        if len(fields) >= 6 and "/libcudart.so." in fields[-1]
    }
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cudaRuntimeGetVersion(ctypes.byref(version)) == 0:
            return f"{version.value // 1000}.{version.value % 1000 // 10}"
    return None
