"""Library search order and its errors (each in a fresh interpreter: loading is cached)."""

from __future__ import annotations

import _ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import sdrest
from sdrest._native.buildinfo import build_info
from sdrest._native.loader import LIB_DIR, library_candidates, library_filename

# The child imports the same sdrest as this process (installed or checkout), from anywhere.
PACKAGE_ROOT = str(Path(sdrest.__file__).resolve().parents[1])

PROBE = "from sdrest._native import load_library; n = load_library(); print(n.origin, n.path, n.version)"


def _run(env_lib: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SDREST_LIB"}
    env["PYTHONPATH"] = PACKAGE_ROOT
    if env_lib is not None:
        env["SDREST_LIB"] = env_lib
    # cwd: `python -c` puts it first on sys.path, which must not shadow PACKAGE_ROOT.
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir()
    )


def test_search_order_is_env_then_package() -> None:
    assert library_candidates({}) == [("package", LIB_DIR / library_filename())]
    assert library_candidates({"SDREST_LIB": "/opt/x/libsd.so"}) == [
        ("$SDREST_LIB", Path("/opt/x/libsd.so")),
        ("package", LIB_DIR / library_filename()),
    ]


def test_package_copy_loads_and_reports_the_pinned_version() -> None:
    result = _run(None)
    assert result.returncode == 0, result.stderr
    origin, path, version = result.stdout.split()
    assert origin == "package" and Path(path) == LIB_DIR / library_filename()
    assert version == build_info()["sd_cpp_version"]  # the build's record, not a pin written here


def test_explicit_library_path_wins() -> None:
    result = _run(str(LIB_DIR / library_filename()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("$SDREST_LIB ")


def test_missing_explicit_library_is_an_error_not_a_fallback(tmp_path) -> None:
    missing = tmp_path / "libstable-diffusion.so"
    result = _run(str(missing))
    assert result.returncode != 0
    assert "NativeLibraryError" in result.stderr
    assert str(missing) in result.stderr and "SDREST_LIB" in result.stderr


def test_incompatible_library_names_the_missing_functions() -> None:
    # Any real shared library without the API will do: CPython's own _ctypes extension.
    result = _run(_ctypes.__file__)
    assert result.returncode != 0
    assert "incompatible" in result.stderr and "new_sd_ctx" in result.stderr


def test_unloadable_file_is_explained(tmp_path) -> None:
    bogus = tmp_path / "libstable-diffusion.so"
    bogus.write_bytes(b"not an ELF file")
    result = _run(str(bogus))
    assert result.returncode != 0
    assert "cannot open native library" in result.stderr
