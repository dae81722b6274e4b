"""The installed ``sdrest`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdrest import __version__
from sdrest._native.buildinfo import build_info


def _sdrest(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("sdrest", path=str(Path(sys.executable).parent)) or shutil.which("sdrest")
    assert exe, "the sdrest console script is installed"
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_version_names_sdrest_and_the_native_library() -> None:
    result = _sdrest("--version")
    assert result.returncode == 0, result.stderr
    assert f"sdrest {__version__}" in result.stdout
    info = build_info()  # what the build recorded; no pin is written here
    assert f"stable-diffusion.cpp {info['sd_cpp_version']}" in result.stdout
    assert info["sdist_sha256"][:16] in result.stdout  # the verified sdist hash is recorded
    assert f"backends: {', '.join(info['backends'])}" in result.stdout


def test_alias_command_is_installed() -> None:
    exe = shutil.which("stable-diffusion-rest-server", path=str(Path(sys.executable).parent))
    assert exe
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and f"sdrest {__version__}" in result.stdout


def test_version_still_answers_without_the_library(tmp_path) -> None:
    result = _sdrest("--version", env={"SDREST_LIB": str(tmp_path / "missing.so")})
    assert result.returncode == 0
    assert "unavailable" in result.stdout and "missing.so" in result.stdout


def test_unknown_command_and_bad_option_exit_2() -> None:
    assert _sdrest("frobnicate").returncode == 2
    assert _sdrest("selftest", "--size", "abc").returncode == 2


@pytest.mark.slow
def test_selftest_passes_and_times_each_stage() -> None:
    result = _sdrest("selftest", "--threads", "2", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in ("open native library", "write synthetic SD1 model", "load model", "generate 64x64", "check image"):
        assert stage in result.stdout
    assert "selftest passed" in result.stdout


@pytest.mark.slow
def test_selftest_fails_loudly_on_a_broken_install(tmp_path) -> None:
    result = _sdrest("selftest", env={"SDREST_LIB": str(tmp_path / "missing.so")})
    assert result.returncode == 1
    assert "selftest FAILED" in result.stderr and "NativeLibraryError" in result.stderr
