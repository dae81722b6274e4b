"""The wheel carries the native library and works installed where no build tree exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Reuses the persistent build directory of `pip install .`, so this only packages.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    (found,) = out.glob("sdrest-*.whl")
    return found


def test_wheel_contains_library_header_and_build_info(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sdrest/_native/lib/libstable-diffusion.so" in names
    assert "sdrest/_native/include/stable-diffusion.h" in names
    assert "sdrest/_native/build_info.json" in names
    assert "sdrest/_native/stable_diffusion_cdef.h" in names
    assert "sdrest/models/recipes.yaml" in names  # the recipe catalogue is package data
    # Nothing of the native tree's own install rules (static ggml, its headers) leaks in.
    assert not [n for n in names if n.endswith(".a") or "/ggml" in n]


def test_library_finds_its_dependencies_relative_to_itself(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extract("sdrest/_native/lib/libstable-diffusion.so", tmp_path)
    dynamic = subprocess.run(
        ["readelf", "-d", str(tmp_path / "sdrest/_native/lib/libstable-diffusion.so")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "$ORIGIN" in dynamic
    assert "libggml" not in dynamic  # ggml is linked in, not a separate file to find


def test_the_default_cpu_build_has_the_llamafile_kernels(wheel: Path, tmp_path: Path) -> None:
    # Unless CMAKE_ARGS turns it off (a comparison build), the CPU backend is built with
    # llamafile's tiled matrix kernels: docs/performance.md measured them 1.65x faster.
    wanted = "GGML_LLAMAFILE=OFF" not in os.environ.get("CMAKE_ARGS", "").upper()
    archive = zipfile.ZipFile(wheel)
    assert json.loads(archive.read("sdrest/_native/build_info.json"))["cpu_llamafile"] is wanted
    archive.extract("sdrest/_native/lib/libstable-diffusion.so", tmp_path)
    library = tmp_path / "sdrest/_native/lib/libstable-diffusion.so"
    symbols = subprocess.run(
        ["readelf", "--dyn-syms", "-W", str(library)], check=True, capture_output=True, text=True
    ).stdout
    assert (" llamafile_sgemm" in symbols) is wanted


def test_wheel_contains_the_web_ui(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("sdrest/webui/") for n in names if n.startswith("sdrest/webui/")}
    in_checkout = {
        str(p.relative_to(REPO / "webui")) for p in (REPO / "webui").rglob("*") if p.is_file() and p.name != "update.sh"
    }
    assert shipped == in_checkout


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the wheel (and its dependencies) installed."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=900)
    return venv


def _away_from_checkout() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SDREST_LIB", "PYTHONPATH")}


def test_wheel_works_in_a_fresh_virtualenv_away_from_the_checkout(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(installed / "bin" / "sdrest"), "selftest", "--threads", "2"],
        cwd=elsewhere,
        env=_away_from_checkout(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(installed) in result.stdout  # the library came from the new environment
    assert "selftest passed" in result.stdout


def test_installed_server_serves_the_web_ui(installed: Path, tmp_path: Path) -> None:
    import requests

    from server_helpers import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            str(installed / "bin" / "sdrest"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--models-dir",
            str(tmp_path / "models"),
        ],
        cwd=tmp_path,
        env=_away_from_checkout(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert server.poll() is None, "the installed server exited"
            try:
                root = requests.get(base + "/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("the installed server did not answer")
        assert root.url == base + "/ui/" and root.status_code == 200
        assert '<div id="app">' in root.text
        for asset in ("/ui/js/main.js", "/ui/app.css", "/ui/vendor/preact.mjs"):
            assert requests.get(base + asset, timeout=10).status_code == 200, asset
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:  # stopping is tests/test_server.py's subject, not this one's
            server.kill()
            server.wait(30)


def _configure(build: Path, *defines: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(build), *defines],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    result.stderr = " ".join(result.stderr.split())  # CMake wraps its messages
    return result


def _pinned_tree() -> Path:
    """The unpacked pinned source the installed library was built from (in the cache): the
    copy with native/patches applied (an older cache may also hold an unpatched copy)."""
    cache = Path(os.environ.get("SDREST_CACHE_DIR") or Path.home() / ".cache" / "sdrest")
    (tree,) = cache.glob("src/*-patched-*/*/vendor/stable-diffusion.cpp")
    return tree


def test_a_local_source_tree_can_replace_the_download(tmp_path: Path) -> None:
    result = _configure(tmp_path / "build", f"-DSDREST_SD_CPP_DIR={_pinned_tree()}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using local stable-diffusion.cpp" in result.stdout
    info = (tmp_path / "build" / "build_info.json").read_text()
    assert '"sd_cpp_version": "local"' in info


def test_a_source_tree_without_the_header_is_refused(tmp_path: Path) -> None:
    result = _configure(tmp_path / "build", f"-DSDREST_SD_CPP_DIR={tmp_path}")
    assert result.returncode != 0
    assert "is not a stable-diffusion.cpp source tree" in result.stderr


def test_a_cached_archive_with_the_wrong_hash_is_never_used(tmp_path: Path) -> None:
    cache = Path(os.environ.get("SDREST_CACHE_DIR") or Path.home() / ".cache" / "sdrest")
    (archive,) = cache.glob("downloads/stable_diffusion_cpp_python-*.tar.gz")
    fake_cache = tmp_path / "cache"
    (fake_cache / "downloads").mkdir(parents=True)
    tampered = fake_cache / "downloads" / archive.name
    tampered.write_bytes(archive.read_bytes()[:-100] + b"\0" * 100)
    # No package index reachable: the only way to succeed would be to use the tampered file.
    result = _configure(tmp_path / "build", env={"SDREST_CACHE_DIR": str(fake_cache), "PIP_NO_INDEX": "1"})
    assert result.returncode != 0
    assert "sha256 mismatch" in result.stderr and "could not download" in result.stderr
    assert not tampered.exists()
    assert not (fake_cache / "src").exists()  # nothing was unpacked
