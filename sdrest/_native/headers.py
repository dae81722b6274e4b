"""Turn the library's C header into a declaration cffi can parse.

The binding's declarations (``stable_diffusion_cdef.h``) are generated from the pinned
``stable-diffusion.h`` by :func:`header_to_cdef` and committed, so a reviewer sees every
change of the C API, and ``tests/_native/test_abi.py`` fails loudly when the header a
library was built from no longer yields exactly the committed declarations.

Regenerate with::

    python -m sdrest._native.headers path/to/stable-diffusion.h > sdrest/_native/stable_diffusion_cdef.h
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CDEF_PATH = Path(__file__).with_name("stable_diffusion_cdef.h")

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_EMPTY_PARAMS = re.compile(r"\b(\w+)\s*\(\s*\)\s*;")


def header_to_cdef(header: str) -> str:
    """Return the declarations of ``header`` without preprocessor lines or comments.

    Everything inside ``#if``/``#ifdef`` blocks other than the include guard (the
    ``SD_API`` export macros, the ``extern "C"`` wrapper) is dropped, the export macro is
    removed, and ``f()`` becomes ``f(void)``, which is what the C header means.
    """
    text = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", header))
    out: list[str] = []
    depth = 0  # conditional nesting; depth 1 is the include guard
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            directive = stripped[1:].strip().split(None, 1)[0] if stripped[1:].strip() else ""
            if directive.startswith("if"):
                depth += 1
            elif directive == "endif":
                depth -= 1
            continue
        if depth > 1:
            continue
        line = line.replace("SD_API ", "").rstrip()
        if line or (out and out[-1]):
            out.append(line)
    cdef = "\n".join(out).strip() + "\n"
    return _EMPTY_PARAMS.sub(r"\1(void);", cdef)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} stable-diffusion.h", file=sys.stderr)
        return 2
    sys.stdout.write(header_to_cdef(Path(argv[1]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
