"""Low-level cffi (ABI mode) binding of the stable-diffusion.cpp C API.

``ffi`` holds every declaration of the pinned ``stable-diffusion.h``; :func:`load_library`
opens the shared library (see :mod:`sdrest._native.loader` for the search order). Nothing
here is Pythonic on purpose: :mod:`sdrest.engine` is the API to use.
"""

from sdrest._native.ffi import ffi
from sdrest._native.loader import (
    LIBRARY_ENV,
    NativeLibrary,
    build_info,
    library_candidates,
    load_library,
)

__all__ = [
    "LIBRARY_ENV",
    "NativeLibrary",
    "build_info",
    "ffi",
    "library_candidates",
    "load_library",
]
