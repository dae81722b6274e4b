"""Which CUDA toolkit a CUDA build uses (native/cmake/SdrestCudaToolkit.cmake, run by CMake in
script mode, as install.sh runs it): a complete system toolkit, else NVIDIA's wheels. Fake
toolkits are folders with the files the check looks at; no CUDA compiler runs. Then the link
checks of native/check-cuda-build.sh on stand-in libraries with the real sonames (gcc)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "native" / "cmake" / "SdrestCudaToolkit.cmake"
CMAKE = shutil.which("cmake") or "cmake"  # the native build's own tool


def _toolkit(root: Path, *, cublas: bool = True) -> Path:
    """A toolkit layout: nvcc, and (if ``cublas``) cuBLAS's header and library."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (root / "bin" / "nvcc").chmod(0o755)
    (root / "include").mkdir()
    (root / "include" / "cuda_runtime.h").write_text("")
    (root / "lib64").mkdir()
    (root / "lib64" / "libcudart.so.12").write_text("")
    if cublas:
        (root / "include" / "cublas_v2.h").write_text("")
        (root / "lib64" / "libcublas.so.12").write_text("")
    return root


def _choose(
    tmp_path: Path, *defines: str, env: dict[str, str] | None = None, search: list[Path] | None = None
) -> subprocess.CompletedProcess[str]:
    """The module's choice with a PATH and environment of the test's making (nothing of this
    machine's own CUDA, if it has one, is seen)."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("CUDA_PATH", "CUDA_HOME", "CUDAToolkit_ROOT")}
    clean["PATH"] = str(empty_bin)
    clean.update(env or {})
    roots = ";".join(str(p) for p in (search or [tmp_path / "no-such-cuda"]))
    return subprocess.run(
        [str(CMAKE), f"-DSDREST_CUDA_SEARCH_ROOTS={roots}", *defines, "-P", str(MODULE)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )


def test_a_complete_system_toolkit_is_used(tmp_path: Path) -> None:
    cuda = _toolkit(tmp_path / "cuda-12.9")
    result = _choose(tmp_path, env={"CUDA_PATH": str(cuda)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"system {cuda}"


def test_the_nvcc_on_path_names_its_toolkit(tmp_path: Path) -> None:
    cuda = _toolkit(tmp_path / "opt-cuda")
    result = _choose(tmp_path, env={"PATH": f"{tmp_path / 'empty-bin'}:{cuda / 'bin'}"})
    assert result.stdout.strip() == f"system {cuda}"


def test_a_toolkit_without_cublas_is_passed_over_for_the_wheels(tmp_path: Path) -> None:
    partial = _toolkit(tmp_path / "partial", cublas=False)
    result = _choose(tmp_path, env={"CUDA_PATH": str(partial)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wheels"
    assert f"{partial}: not a complete CUDA toolkit" in result.stderr


def test_a_partial_toolkit_first_does_not_hide_a_complete_one_later(tmp_path: Path) -> None:
    partial = _toolkit(tmp_path / "partial", cublas=False)
    complete = _toolkit(tmp_path / "usr-local-cuda")
    result = _choose(tmp_path, env={"CUDA_HOME": str(partial)}, search=[complete])
    assert result.stdout.strip() == f"system {complete}"


def test_no_toolkit_at_all_means_the_wheels(tmp_path: Path) -> None:
    result = _choose(tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "wheels"
    assert "not a complete" not in result.stderr


def test_wheels_can_be_asked_for_where_a_system_toolkit_exists(tmp_path: Path) -> None:
    cuda = _toolkit(tmp_path / "cuda")
    assert _choose(tmp_path, "-DSDREST_CUDA_TOOLKIT=wheels", env={"CUDA_PATH": str(cuda)}).stdout.strip() == "wheels"


def test_system_without_a_complete_toolkit_is_an_error(tmp_path: Path) -> None:
    partial = _toolkit(tmp_path / "partial", cublas=False)
    result = _choose(tmp_path, "-DSDREST_CUDA_TOOLKIT=system", env={"CUDA_PATH": str(partial)})
    assert result.returncode != 0 and "no complete CUDA toolkit was found" in result.stderr


def test_an_unknown_choice_is_refused(tmp_path: Path) -> None:
    result = _choose(tmp_path, "-DSDREST_CUDA_TOOLKIT=conda")
    assert result.returncode != 0 and "must be auto, system or wheels" in result.stderr


def test_wheel_links_are_made_in_the_build_folder_not_in_site_packages(tmp_path: Path) -> None:
    wheel = tmp_path / "site-packages" / "nvidia" / "cu13"
    for folder in ("bin", "include", "nvvm", "lib"):
        (wheel / folder).mkdir(parents=True)
    for name in ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudart_static.a"):
        (wheel / "lib" / name).write_text(name)
    before = sorted(p.relative_to(wheel) for p in wheel.rglob("*"))
    farm = tmp_path / "build" / "cuda-toolkit"
    script = tmp_path / "farm.cmake"
    script.write_text(f'include("{MODULE}")\nsdrest_cuda_link_farm("{wheel}" "{farm}")\n')
    result = subprocess.run([str(CMAKE), "-P", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(wheel) for p in wheel.rglob("*")) == before  # nothing added there
    for name in ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcudart.so.13"):
        assert (farm / "lib" / name).resolve() == (wheel / "lib" / f"{name.split('.so')[0]}.so.13").resolve()
    assert (farm / "lib64" / "libcublas.so").read_text() == "libcublas.so.13"
    assert (farm / "bin").resolve() == (wheel / "bin").resolve()
    assert not (farm / "lib" / "libcudart_static.so").exists()


def _shared(path: Path, *link: str, rpath: str | None = None) -> Path:
    """A tiny shared library named (soname) as its file, linked against ``link`` (gcc)."""
    source = path.with_suffix(".c")
    source.write_text("int sdrest_stand_in(void) { return 0; }\n")
    command = [
        "gcc",
        "-shared",
        "-fPIC",
        "-o",
        str(path),
        str(source),
        f"-Wl,-soname,{path.name}",
        "-Wl,--no-as-needed",
        *link,
    ]
    if rpath:
        command.append(f"-Wl,-rpath,{rpath}")
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return path


def _stand_in_build(tmp_path: Path, rpath: str | None) -> Path:
    """A build folder as native/check-cuda-build.sh leaves it: the CMake module's folder of wheel
    libraries (stand-ins with the real sonames) and a libstable-diffusion.so that needs them."""
    wheel_lib = tmp_path / "build" / "cuda-toolkit" / "lib"
    wheel_lib.mkdir(parents=True)
    _shared(wheel_lib / "libcudart.so.13")
    _shared(wheel_lib / "libcublasLt.so.13")
    _shared(wheel_lib / "libcublas.so.13", f"-L{wheel_lib}", "-l:libcublasLt.so.13", rpath="$ORIGIN")
    out = tmp_path / "build" / "sd-cpp" / "bin"
    out.mkdir(parents=True)
    _shared(out / "libstable-diffusion.so", f"-L{wheel_lib}", "-l:libcudart.so.13", "-l:libcublas.so.13", rpath=rpath)
    return tmp_path / "build"


def _check(build: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "native" / "check-cuda-build.sh"), "--check-only", "--build-dir", str(build)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_link_check_passes_a_library_that_finds_the_wheels_by_rpath(tmp_path: Path) -> None:
    result = _check(_stand_in_build(tmp_path, "$ORIGIN:$ORIGIN/../../../nvidia/cu13/lib"))
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "ok: NEEDED libcudart.so.13",
        "ok: NEEDED libcublas.so.13",
        "ok: ldd finds libcublasLt.so.13 in the wheels' nvidia/cu13/lib",
    ):
        assert line in result.stdout
    assert result.stdout.rstrip().endswith("PASS")


def test_link_check_fails_a_library_without_the_rpath(tmp_path: Path) -> None:
    result = _check(_stand_in_build(tmp_path, "$ORIGIN"))
    assert result.returncode == 1
    assert "FAIL: no RPATH into the wheels" in result.stderr
    # Not from the wheels' folder: not found at all, or (where a system has one) from elsewhere.
    assert any(line.startswith("FAIL: ldd: ") and "libcublas.so.13" in line for line in result.stderr.splitlines())
