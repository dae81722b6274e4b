"""The one cffi ``FFI`` object holding the library's declarations."""

from __future__ import annotations

from cffi import FFI

from sdrest._native.headers import CDEF_PATH

# Memory the library returns (image buffers, *_to_str strings) is malloc'd by it; it must
# be released with the same C runtime's free(), which dlsym finds through the library's
# own dependency on libc.
C_RUNTIME_CDEF = "void free(void *ptr);\n"

ffi = FFI()
ffi.cdef(CDEF_PATH.read_text(encoding="utf-8"))
ffi.cdef(C_RUNTIME_CDEF)


def declared_functions() -> list[str]:
    """Names of every function declared by the pinned header (not the C runtime ones).

    cffi keeps its parsed declarations as ``"function <name>"`` keys; reading them beats
    re-parsing C with a regular expression.
    """
    runtime = {"free"}
    return sorted(
        key.split(" ", 1)[1]
        for key in ffi._parser._declarations
        if key.startswith("function ") and key.split(" ", 1)[1] not in runtime
    )


def declared_structs() -> list[str]:
    """Typedef names of every struct with a layout (opaque handles like sd_ctx_t excluded)."""
    names = []
    for key in ffi._parser._declarations:
        if key.startswith("typedef "):
            name = key.split(" ", 1)[1]
            ctype = ffi.typeof(name)
            if ctype.kind == "struct" and ctype.fields is not None:
                names.append(name)
    return names


def declared_enums() -> list[str]:
    """Every ``enum x`` type of the header."""
    return [key for key in ffi._parser._declarations if key.startswith("enum ")]
