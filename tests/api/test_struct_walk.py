"""Every field of the native parameter structs is reachable from the API, or docs/api.md says
why not ("Native parameters not in the API"). One dict per struct: which C fields the API's
tables reach. The struct walk fails for a new library field until it gets an API field or a
documented reason, and for a documented field that has become reachable (a stale reason)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sdrest._native import ffi
from sdrest.api.schemas.generation import MODEL_COMPONENTS, MODEL_OPTIONS, GenerationRequest
from sdrest.api.schemas.video import VIDEO_COMPONENTS
from sdrest.engine import params as engine_params
from sdrest.engine.structs import NativeStruct
from sdrest.jobs.engine_fields import IMAGE_FIELDS
from sdrest.jobs.video import VIDEO_FIELDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
NOT_IN_API = "## Native parameters not in the API"
#: Job parameters the server derives from a request field (a model name resolved to its path).
DERIVED = {"hires.model_path": "hires.model", "pm_id_embed_path": "pm_id_embed"}


#: Struct -> its pointer-length fields (from the engine's dataclasses, which set them).
COUNTS = {
    cls.c_type: tuple(cls.c_counts.values())
    for cls in vars(engine_params).values()
    if isinstance(cls, type) and issubclass(cls, NativeStruct) and cls is not NativeStruct
}


def _targets(table: dict[str, Any]) -> set[str]:
    return {t for targets in table.values() for t in ((targets,) if isinstance(targets, str) else targets)}


def image_reachable() -> set[str]:
    return _targets(IMAGE_FIELDS)


def context_reachable() -> set[str]:
    # model_path: the request's `model` (a checkpoint name), resolved by the server.
    components = {**MODEL_COMPONENTS, **VIDEO_COMPONENTS}  # the video route adds the high-noise model
    return _targets(MODEL_OPTIONS) | {option for option, _folder in components.values()} | {"model_path"}


def video_reachable() -> set[str]:
    # Each row's request field is checked in tests/worker/test_video_params.py.
    return _targets(VIDEO_FIELDS)


#: Struct -> the C fields (dotted, nested structs walked) that the API reaches.
REACHABLE = {
    "sd_img_gen_params_t": image_reachable,
    "sd_ctx_params_t": context_reachable,
    "sd_vid_gen_params_t": video_reachable,
}


def leaf_fields(ctype: str) -> set[str]:
    """Dotted paths of a struct's fields; nested parameter structs walked, sd_image_t a leaf,
    pointer lengths (``*_count``) left out: they follow their list."""
    struct = ffi.typeof(ctype)
    counts = set(COUNTS.get(ctype, ()))
    paths = set()
    for name, field in struct.fields:
        if name in counts:
            continue
        if field.type.kind == "struct" and field.type.cname != "sd_image_t":
            paths |= {f"{name}.{inner}" for inner in leaf_fields(field.type.cname)}
        else:
            paths.add(name)
    return paths


def documented() -> dict[str, dict[str, str]]:
    """The doc's list: struct -> {field: reason}."""
    text = DOC.read_text("utf-8")
    assert NOT_IN_API in text, f"docs/api.md has no section {NOT_IN_API!r}"
    section = text.split(NOT_IN_API, 1)[1].split("\n## ", 1)[0]
    listed: dict[str, dict[str, str]] = {}
    for struct, field, reason in re.findall(r"^- `(sd_\w+_t)\.([\w.]+)`: (.+)$", section, re.M):
        listed.setdefault(struct, {})[field] = reason.strip()
    return listed


@pytest.mark.parametrize("struct", sorted(REACHABLE))
def test_every_struct_field_is_reachable_or_documented(struct: str) -> None:
    fields = leaf_fields(struct)
    reachable = REACHABLE[struct]()
    listed = documented().get(struct, {})
    assert reachable <= fields, f"tables name fields {struct} does not have: {sorted(reachable - fields)}"
    missing = sorted(fields - reachable - set(listed))
    assert not missing, f"{struct}: neither in the API nor in docs/api.md: {missing}"
    stale = sorted(set(listed) & reachable)
    assert not stale, f"{struct}: docs/api.md lists reachable fields as not in the API: {stale}"
    unknown = sorted(set(listed) - fields)
    assert not unknown, f"{struct}: docs/api.md lists fields the struct does not have: {unknown}"
    assert all(len(reason) > 10 for reason in listed.values())


def _request_field(path: str) -> Any:
    model: Any = GenerationRequest
    field = None
    for part in path.split("."):
        field = model.model_fields.get(part)
        assert field is not None, f"{path}: not a field of the generation request"
        inner = [a for a in getattr(field.annotation, "__args__", (field.annotation,)) if hasattr(a, "model_fields")]
        model = inner[0] if inner else None
    return field


def test_every_table_row_is_a_request_field() -> None:
    for key in (*IMAGE_FIELDS, *MODEL_OPTIONS, *MODEL_COMPONENTS):
        _request_field(DERIVED.get(key, key))


def test_the_walk_sees_nested_structs_and_no_counts() -> None:
    fields = leaf_fields("sd_img_gen_params_t")
    assert "sample_params.guidance.slg.layers" in fields and "hires.model_path" in fields
    assert "lora_count" not in fields and "init_image" in fields and "init_image.width" not in fields
