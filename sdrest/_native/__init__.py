"""Low-level cffi (ABI mode) binding of the stable-diffusion.cpp C API.

``ffi`` holds every declaration of the pinned ``stable-diffusion.h``; :func:`load_library`
opens the shared library (see :mod:`sdrest._native.loader` for the search order). Nothing
here is Pythonic on purpose: :mod:`sdrest.engine` is the API to use.
"""

# Loaded lazily (PEP 562): the server process reads build_info() without paying for cffi's
# parse of the whole header; only the worker process opens the library.
from __future__ import annotations

from typing import TYPE_CHECKING

from sdrest._lazy import lazy_exports

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and editors
    from sdrest._native.binding import ffi
    from sdrest._native.buildinfo import build_info
    from sdrest._native.loader import LIBRARY_ENV, NativeLibrary, library_candidates, load_library

_EXPORTS = {
    "ffi": "binding",
    "LIBRARY_ENV": "loader",
    "NativeLibrary": "loader",
    "library_candidates": "loader",
    "load_library": "loader",
    "build_info": "buildinfo",
}

__all__ = [  # a literal, so that linters and type checkers see the re-exports
    "LIBRARY_ENV",
    "NativeLibrary",
    "build_info",
    "ffi",
    "library_candidates",
    "load_library",
]

__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)
