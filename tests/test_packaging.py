"""The wheel carries the native library and works installed where no build tree exists."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Reuses the persistent build directory of `pip install .`, so this only packages.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=1200)
    (found,) = out.glob("sdrest-*.whl")
    return found


def test_wheel_contains_library_header_and_build_info(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sdrest/_native/lib/libstable-diffusion.so" in names
    assert "sdrest/_native/include/stable-diffusion.h" in names
    assert "sdrest/_native/build_info.json" in names
    assert "sdrest/_native/stable_diffusion_cdef.h" in names
    # Nothing of the native tree's own install rules (static ggml, its headers) leaks in.
    assert not [n for n in names if n.endswith(".a") or "/ggml" in n]


def test_library_finds_its_dependencies_relative_to_itself(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extract("sdrest/_native/lib/libstable-diffusion.so", tmp_path)
    dynamic = subprocess.run(["readelf", "-d", str(tmp_path / "sdrest/_native/lib/libstable-diffusion.so")],
                             check=True, capture_output=True, text=True).stdout
    assert "$ORIGIN" in dynamic
    assert "libggml" not in dynamic  # ggml is linked in, not a separate file to find


def test_wheel_works_in_a_fresh_virtualenv_away_from_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=900)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SDREST_LIB", "PYTHONPATH")}
    result = subprocess.run([str(venv / "bin" / "sdrest"), "selftest", "--threads", "2"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(venv) in result.stdout  # the library came from the new environment
    assert "selftest passed" in result.stdout
