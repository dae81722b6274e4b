"""Low-level cffi (ABI mode) binding of the stable-diffusion.cpp C API.

``ffi`` holds every declaration of the pinned ``stable-diffusion.h``; :func:`load_library`
opens the shared library (see :mod:`sdrest._native.loader` for the search order). Nothing
here is Pythonic on purpose: :mod:`sdrest.engine` is the API to use.
"""

# Loaded lazily (PEP 562): the server process reads build_info() without paying for cffi's
# parse of the whole header; only the worker process opens the library.
from __future__ import annotations

from sdrest._lazy import lazy_exports

_EXPORTS = {
    "ffi": "binding",
    "LIBRARY_ENV": "loader",
    "NativeLibrary": "loader",
    "library_candidates": "loader",
    "load_library": "loader",
    "build_info": "buildinfo",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)
