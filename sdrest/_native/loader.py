"""Find and open the native library.

Search order (first hit wins, nothing else is tried silently):

1. ``$SDREST_LIB``: an explicit path to a ``libstable-diffusion`` shared library, e.g. one
   built with another backend.
2. The copy installed inside this package (``sdrest/_native/lib/``), which ``pip install``
   compiled from the pinned source.

A CUDA build's runtime libraries (``libcudart``, ``libcublas``) are opened first, from the
``sdrest[cuda]`` wheels where installed (:mod:`sdrest._native.cudart`).

A library that cannot be found, cannot be opened, or lacks a declared function raises
:class:`~sdrest.errors.NativeLibraryError` naming every path looked at and how to fix it.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdrest._native.binding import declared_functions, ffi
from sdrest._native.buildinfo import build_info
from sdrest._native.cudart import preload_cuda_runtime
from sdrest.errors import NativeLibraryError

LIBRARY_ENV = "SDREST_LIB"
PACKAGE_DIR = Path(__file__).resolve().parent
LIB_DIR = PACKAGE_DIR / "lib"
INCLUDE_DIR = PACKAGE_DIR / "include"

_FIX_HINT = (
    "Reinstall sdrest so the library is compiled into the package "
    "(`pip install --force-reinstall --no-deps .` from a checkout, or `./install.sh`), "
    f"or set {LIBRARY_ENV}=/path/to/libstable-diffusion.so."
)


def library_filename() -> str:
    """The platform's file name of the shared library."""
    if sys.platform == "win32":
        return "stable-diffusion.dll"
    if sys.platform == "darwin":
        return "libstable-diffusion.dylib"
    return "libstable-diffusion.so"


def library_candidates(environ: dict[str, str] | None = None) -> list[tuple[str, Path]]:
    """Where the library is looked for, in order, as ``(origin, path)`` pairs."""
    env = os.environ if environ is None else environ
    candidates: list[tuple[str, Path]] = []
    explicit = env.get(LIBRARY_ENV, "").strip()
    if explicit:
        candidates.append((f"${LIBRARY_ENV}", Path(explicit).expanduser()))
    candidates.append(("package", LIB_DIR / library_filename()))
    return candidates


@dataclass(frozen=True)
class NativeLibrary:
    """An opened library: the cffi ``lib`` handle and where it came from."""

    lib: Any
    path: Path
    origin: str

    @property
    def version(self) -> str:
        return ffi.string(self.lib.sd_version()).decode()

    @property
    def commit(self) -> str:
        return ffi.string(self.lib.sd_commit()).decode()

    @property
    def system_info(self) -> str:
        return ffi.string(self.lib.sd_get_system_info()).decode().strip()


def _open(origin: str, path: Path) -> NativeLibrary:
    if not path.is_file():
        raise NativeLibraryError(f"native library not found at {path} ({origin}). {_FIX_HINT}")
    if origin == "package":
        # A CUDA build needs the CUDA runtime's libraries: say which wheel is missing, if one is.
        preload_cuda_runtime(build_info())
    try:
        lib = ffi.dlopen(str(path))
    except OSError as exc:
        raise NativeLibraryError(f"cannot open native library {path} ({origin}): {exc}. {_FIX_HINT}") from exc
    missing = [name for name in declared_functions() if not _has_symbol(lib, name)]
    if missing:
        raise NativeLibraryError(
            f"native library {path} ({origin}) is incompatible with this sdrest: it lacks "
            f"{', '.join(missing)}. It was built from a different stable-diffusion.cpp than "
            f"the binding's header. {_FIX_HINT}"
        )
    return NativeLibrary(lib=lib, path=path, origin=origin)


def _has_symbol(lib: Any, name: str) -> bool:
    try:
        getattr(lib, name)
    except AttributeError:
        return False
    return True


@functools.cache
def _load(candidates: tuple[tuple[str, Path], ...]) -> NativeLibrary:
    origin, path = candidates[0]
    # An explicit $SDREST_LIB that is wrong is an error, never a silent fallback.
    return _open(origin, path)


def load_library() -> NativeLibrary:
    """Open (once per process and path) the library from the first search location."""
    return _load(tuple(library_candidates()))
