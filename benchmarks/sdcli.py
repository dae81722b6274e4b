"""Build the library's own ``sd-cli`` example from the same source and flags as sdrest.

Used by the parity check and the overhead benchmark. The persistent build directory of
``pip install .`` (``build/<wheel tag>``) is reused: only the example's own files compile.
``sd-cli`` is then run with ``LD_LIBRARY_PATH`` pointing at the library sdrest loads, so
both sides run the very same ``libstable-diffusion.so``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pip_build_dir() -> Path | None:
    for cache in sorted(REPO.glob("build/*/CMakeCache.txt")):
        if "SDREST_BUILD_FROM_PIP" in cache.read_text(errors="replace"):
            return cache.parent
    return None


def ensure_sd_cli(log=print, target: str = "sd-cli") -> Path:
    """Return the path of a built sd-cli (or ``target``: the library's other example, sd-server),
    building it if needed. ``$SDREST_BENCH_SD_CLI`` / ``$SDREST_BENCH_SD_SERVER`` name one built
    elsewhere (the GPU machine gets them prebuilt: it cannot download the source)."""
    given = os.environ.get("SDREST_BENCH_" + target.upper().replace("-", "_"))
    if given:
        return Path(given)
    build = _pip_build_dir() or REPO / "build" / "sd-cli"
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake is needed to build sd-cli")
    args = [
        cmake,
        "-S",
        str(REPO),
        "-B",
        str(build),
        "-DSDREST_BUILD_EXAMPLES=ON",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DPython_EXECUTABLE={sys.executable}",
    ]
    if not (build / "CMakeCache.txt").exists() and shutil.which("ninja"):
        args += ["-G", "Ninja"]
    cmake_args = os.environ.get("CMAKE_ARGS", "").split()
    log(f"configuring {build} for {target}")
    _quiet([*args, *cmake_args, "-Wno-dev"])
    log(f"building {target} (first time: a few minutes)")
    _quiet([cmake, "--build", str(build), "--target", target, "--parallel"])
    binary = build / "bin" / target
    if not binary.is_file():
        raise RuntimeError(f"{target} was not produced at {binary}")
    return binary


def _quiet(command: list[str]) -> None:
    """Run a build step; show its output only when it fails."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, command)


def sd_cli_env(library: Path) -> dict[str, str]:
    """Environment that makes sd-cli load exactly ``library`` (RUNPATH yields to LD_LIBRARY_PATH)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(library.parent), env.get("LD_LIBRARY_PATH")]))
    return env


def loaded_library(binary: Path, env: dict[str, str]) -> str:
    """Which libstable-diffusion the dynamic linker picks for ``binary`` (from ldd)."""
    out = subprocess.run(["ldd", str(binary)], env=env, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libstable-diffusion" in line:
            return line.split("=>")[-1].split("(")[0].strip()
    return "?"
