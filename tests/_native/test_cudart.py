"""A CUDA build's runtime libraries: a missing wheel is named before the library is opened.

The package under test is a temporary copy of this sdrest whose build record says "cuda"; the
real loader runs in a fresh interpreter (loading is cached per process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import sdrest
from sdrest._native import cudart
from sdrest._native.buildinfo import build_info
from sdrest._native.cudart import cuda_major, preload_cuda_runtime
from sdrest.errors import NativeLibraryError

PROBE = "from sdrest._native import load_library; print(load_library().path)"


def _copy_with_build_info(tmp_path: Path, **record: object) -> Path:
    """A copy of the sdrest package (the library itself stays a link) with its own build record."""
    root = tmp_path / "site"
    shutil.copytree(
        Path(sdrest.__file__).resolve().parent,
        root / "sdrest",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "webui"),
    )
    info_path = root / "sdrest" / "_native" / "build_info.json"
    info_path.unlink(missing_ok=True)  # may be a link to the real build's record: never write through it
    info_path.write_text(json.dumps({**build_info(), **record}))
    return root


def _load(site: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDREST_LIB", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
        check=False,
    )


def test_missing_cuda_runtime_wheel_is_named(tmp_path: Path) -> None:
    # CUDA 99: no wheel and no system library provides libcudart.so.99 anywhere.
    site = _copy_with_build_info(tmp_path, backends=["cpu", "cuda"], cuda_version="99.1.0", cuda_toolkit="wheels")
    result = _load(site)
    assert result.returncode != 0
    assert "NativeLibraryError" in result.stderr
    assert "built with CUDA 99.1.0 and needs libcudart.so.99" in result.stderr
    assert "CUDA 99 toolkit's libraries" in result.stderr  # not the extra's CUDA 13 wheels


def test_a_missing_cuda_13_library_names_the_extras_wheel(monkeypatch) -> None:
    # A library no machine has, in place of the runtime list: the CUDA 13 advice names the wheel.
    monkeypatch.setattr(cudart, "RUNTIME_LIBRARIES", (("libsdrest_absent_cudart", "nvidia-cuda-runtime"),))
    with pytest.raises(NativeLibraryError) as caught:
        cudart.preload_cuda_runtime({"backends": ["cpu", "cuda"], "cuda_version": "13.5.37"})
    message = str(caught.value)
    assert "built with CUDA 13.5.37 and needs libsdrest_absent_cudart.so.13" in message
    assert "Install NVIDIA's nvidia-cuda-runtime wheel: pip install 'sdrest[cuda]'" in message


def test_a_copy_with_the_builds_own_record_loads(tmp_path: Path) -> None:
    # A CPU build needs no CUDA runtime; a CUDA build finds the sdrest[cuda] wheels from anywhere.
    site = _copy_with_build_info(tmp_path)
    result = _load(site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "sdrest" / "_native" / "lib" / "libstable-diffusion.so")


def test_cuda_major_reads_the_build_record() -> None:
    assert cuda_major({"backends": ["cpu", "cuda"], "cuda_version": "13.5.37"}) == "13"
    assert cuda_major({"backends": ["cpu"], "cuda_version": "13.5.37"}) is None
    assert cuda_major({"backends": ["cpu", "cuda"]}) is None  # an older record: the RPATH alone finds it
    assert preload_cuda_runtime({"backends": ["cpu"]}) == []


def test_runtime_version_never_loads_the_cuda_runtime_to_ask() -> None:
    # A fresh interpreter that has not opened the native library has no CUDA runtime mapped.
    probe = (
        "from pathlib import Path; from sdrest._native.cudart import runtime_version; "
        "print(runtime_version(), 'libcudart' in Path('/proc/self/maps').read_text())"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(sdrest.__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "False"]
