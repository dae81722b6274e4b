"""Copy Python dataclasses into the library's C structs.

A :class:`NativeStruct` dataclass names its fields exactly like the C struct it mirrors, so
the mapping is mechanical and a test can prove that every C field is covered. ``None``
means "keep the library's default", which the caller got from the matching ``*_init``
function before filling. Conversion is driven by the C field's type:

- enums accept the library's names (via :mod:`sdrest.engine.enums`) or integers;
- ``const char*`` accepts ``str``/``os.PathLike``;
- nested structs take a nested :class:`NativeStruct`;
- ``sd_image_t`` takes a Pillow image;
- a pointer plus a count field takes a sequence (the count is set from its length).

Every buffer handed to C is kept in an :class:`Arena` that the caller holds until the native
call returns.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from sdrest._native import ffi
from sdrest.engine.enums import parse_enum
from sdrest.engine.images import fill_sd_image


class Arena:
    """Owns the Python-side buffers of one native call (C only borrows them)."""

    def __init__(self) -> None:
        self.buffers: list[Any] = []

    def cstr(self, value: str | os.PathLike[str]) -> Any:
        buffer = ffi.new("char[]", os.fsencode(value))
        self.buffers.append(buffer)
        return buffer


class NativeStruct:
    """Mixin for dataclasses that mirror a C struct (see module docstring)."""

    #: C struct type name, e.g. ``"sd_ctx_params_t"``.
    c_type: ClassVar[str]
    #: Sequence field -> the C field that receives its length.
    c_counts: ClassVar[dict[str, str]] = {}
    #: Image field -> Pillow mode it is converted to (default RGB).
    c_image_modes: ClassVar[dict[str, str]] = {}

    def fill(self, target: Any, lib: Any, arena: Arena, path: str = "") -> None:
        """Write every non-``None`` field into ``target`` (a ``c_type *``)."""
        c_fields = dict(ffi.typeof(f"{self.c_type} *").item.fields)
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if value is None:
                continue
            name = f"{path}{field.name}"
            ctype = c_fields[field.name].type
            try:
                self._fill_field(target, field.name, ctype, value, lib, arena, name)
            except (TypeError, OverflowError) as exc:
                raise ValueError(f"{name}: {exc}") from exc

    def _fill_field(self, target: Any, cname: str, ctype: Any, value: Any, lib: Any, arena: Arena, name: str) -> None:
        if ctype.kind == "enum":
            setattr(target, cname, parse_enum(lib, ctype.cname, value, name))
        elif ctype.kind == "struct" and ctype.cname == "sd_image_t":
            fill_sd_image(getattr(target, cname), value, self.c_image_modes.get(cname, "RGB"), arena.buffers)
        elif ctype.kind == "struct":
            if not isinstance(value, NativeStruct):
                raise ValueError(f"{name}: expected {ctype.cname} parameters, got {type(value).__name__}")
            value.fill(ffi.addressof(target, cname), lib, arena, f"{name}.")
        elif ctype.kind == "pointer" and ctype.item.cname == "char":
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
            setattr(target, cname, arena.cstr(value))
        elif ctype.kind == "pointer":
            self._fill_array(target, cname, ctype.item, value, lib, arena, name)
        elif ctype.kind == "primitive":
            setattr(target, cname, _check_primitive(ctype.cname, value, name))
        else:  # pragma: no cover - the header has no other kinds today
            raise ValueError(f"{name}: unsupported C field kind {ctype.kind}")

    def _fill_array(self, target: Any, cname: str, item: Any, values: Any, lib: Any, arena: Arena, name: str) -> None:
        if cname not in self.c_counts:
            raise ValueError(f"{name}: no count field known for this pointer")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"{name}: expected a list, got {type(values).__name__}")
        array = ffi.new(f"{item.cname}[]", max(len(values), 1))
        arena.buffers.append(array)
        for index, value in enumerate(values):
            element = f"{name}[{index}]"
            if item.cname == "sd_image_t":
                fill_sd_image(array[index], value, self.c_image_modes.get(cname, "RGB"), arena.buffers)
            elif item.kind == "struct":
                if not isinstance(value, NativeStruct):
                    raise ValueError(f"{element}: expected {item.cname} parameters")
                value.fill(array + index, lib, arena, f"{element}.")
            else:
                array[index] = _check_primitive(item.cname, value, element)
        setattr(target, cname, array if values else ffi.NULL)
        setattr(target, self.c_counts[cname], len(values))


def _check_primitive(cname: str, value: Any, name: str) -> Any:
    if cname == "_Bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true/false, got {value!r}")
        return value
    if cname in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return value


def struct_to_dict(cdata: Any, lib: Any | None = None) -> dict[str, Any]:
    """Read a C struct (pointer or value) into plain Python values, e.g. library defaults.

    Enums are given by the library's name when ``lib`` is passed; strings are decoded;
    other pointers become ``None`` when NULL.
    """
    from sdrest.engine.enums import enum_name

    ctype = ffi.typeof(cdata)
    struct_type = ctype.item if ctype.kind == "pointer" else ctype
    result: dict[str, Any] = {}
    for cname, field in struct_type.fields:
        value = getattr(cdata, cname)
        kind = field.type.kind
        if kind == "struct":
            result[cname] = struct_to_dict(ffi.addressof(cdata, cname) if ctype.kind == "pointer" else value, lib)
        elif kind == "enum":
            result[cname] = enum_name(lib, field.type.cname, int(value)) if lib is not None else int(value)
        elif kind == "pointer":
            if value == ffi.NULL:
                result[cname] = None
            elif field.type.item.cname == "char":
                result[cname] = ffi.string(value).decode()
            else:
                result[cname] = "<pointer>"
        else:
            result[cname] = value
    return result
