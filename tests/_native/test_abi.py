"""ABI proof: the cffi declarations agree with a C compiler on the pinned header.

A C probe is compiled against the real ``stable-diffusion.h`` the library was built from and
prints, for every struct, ``sizeof`` and each field's ``offsetof`` and size, and every enum
constant's value. Any difference from what cffi computes fails loudly: a single wrong field
would otherwise make the library read garbage.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sdrest._native import ffi, load_library
from sdrest._native.binding import declared_enums, declared_functions, declared_structs
from sdrest._native.headers import CDEF_PATH, header_to_cdef
from sdrest._native.loader import INCLUDE_DIR


@pytest.fixture(scope="module")
def header() -> Path:
    path = INCLUDE_DIR / "stable-diffusion.h"
    assert path.is_file(), f"the pinned header is not installed at {path}; run `pip install .`"
    return path


def _probe_source(header: Path) -> str:
    lines = [f'#include "{header}"', "#include <stdio.h>", "int main(void) {"]
    for struct in declared_structs():
        lines.append(f'  printf("S {struct} %zu\\n", sizeof({struct}));')
        for field, _ in ffi.typeof(struct).fields:
            lines.append(
                f'  printf("F {struct}.{field} %zu %zu\\n", offsetof({struct}, {field}), '
                f"sizeof((({struct}*)0)->{field}));"
            )
    for enum in declared_enums():
        lines.append(f'  printf("T {enum} %zu\\n", sizeof({enum}));')
        for name in ffi.typeof(enum).relements:
            lines.append(f'  printf("E {name} %lld\\n", (long long){name});')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def _expected() -> list[str]:
    out = []
    for struct in declared_structs():
        out.append(f"S {struct} {ffi.sizeof(struct)}")
        for field, info in ffi.typeof(struct).fields:
            out.append(f"F {struct}.{field} {info.offset} {ffi.sizeof(info.type)}")
    for enum in declared_enums():
        out.append(f"T {enum} {ffi.sizeof(enum)}")
        for name, value in ffi.typeof(enum).relements.items():
            out.append(f"E {name} {value}")
    return out


def test_every_struct_field_and_enum_matches_the_c_compiler(header: Path, tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed for the ABI probe"
    source = tmp_path / "probe.c"
    source.write_text(_probe_source(header))
    binary = tmp_path / "probe"
    subprocess.run([compiler, "-std=c11", "-Wall", "-Werror", str(source), "-o", str(binary)], check=True)
    actual = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines()
    expected = _expected()
    assert len(expected) > 250  # all 16 structs and 11 enums, not a handful
    mismatches = [(e, a) for e, a in zip(expected, actual, strict=False) if e != a]
    assert not mismatches and len(actual) == len(expected), mismatches[:20]


def test_committed_declarations_are_exactly_the_pinned_header(header: Path) -> None:
    assert header_to_cdef(header.read_text()) == CDEF_PATH.read_text(), (
        "stable-diffusion.h changed: regenerate sdrest/_native/stable_diffusion_cdef.h with "
        "`python -m sdrest._native.headers` and review the binding"
    )


def test_binding_declares_the_whole_api() -> None:
    functions = set(declared_functions())
    # Spot-check each family the issue names, so an empty or truncated cdef cannot pass.
    for name in (
        "new_sd_ctx",
        "free_sd_ctx",
        "generate_image",
        "generate_video",
        "new_upscaler_ctx",
        "upscale",
        "convert",
        "preprocess_canny",
        "sd_set_log_callback",
        "sd_set_progress_callback",
        "sd_set_preview_callback",
        "str_to_sample_method",
        "sd_scheduler_name",
        "sd_img_gen_params_init",
        "sd_version",
        "sd_cancel_generation",
    ):
        assert name in functions
    assert len(functions) == 47
    assert {
        "sd_ctx_params_t",
        "sd_img_gen_params_t",
        "sd_vid_gen_params_t",
        "sd_cache_params_t",
        "sd_hires_params_t",
        "sd_image_t",
    } <= set(declared_structs())


def test_header_to_cdef_strips_what_cffi_cannot_parse() -> None:
    header = (
        "#ifndef G\n#define G\n#ifdef X\n#define SD_API a\n#endif\n#ifdef __cplusplus\n"
        'extern "C" {\n#endif\n// c\nSD_API int f(); /* d */\ntypedef struct { int a; } s_t;\n'
        "#ifdef __cplusplus\n}\n#endif\n#endif\n"
    )
    assert header_to_cdef(header) == "int f(void);\ntypedef struct { int a; } s_t;\n"


def test_cancel_patch_has_upstreams_signature_and_values() -> None:
    # native/patches/0001 adds upstream's call (leejet/stable-diffusion.cpp pull request 1124):
    # the same names, values and signature, so that a pin bump past it can drop the patch.
    assert dict(ffi.typeof("enum sd_cancel_mode_t").relements) == {
        "SD_CANCEL_ALL": 0,
        "SD_CANCEL_NEW_LATENTS": 1,
        "SD_CANCEL_RESET": 2,
    }
    assert ffi.typeof(load_library().lib.sd_cancel_generation) is ffi.typeof(
        "void(*)(sd_ctx_t *, enum sd_cancel_mode_t)"
    )


def test_every_patch_is_listed_in_the_docs() -> None:
    root = Path(__file__).resolve().parents[2]
    patches = sorted(p.name for p in (root / "native" / "patches").glob("*.patch"))
    assert patches, "native/patches/ holds the cancel patch"
    docs = (root / "docs" / "native.md").read_text()
    assert [name for name in patches if name not in docs] == []
