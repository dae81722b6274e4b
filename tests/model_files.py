"""Writers of small PyTorch and GGUF model files for the model-library tests.

Only headers matter to detection, so tensor data is never generated: GGUF files stop after
the tensor infos, and PyTorch files are real zips whose ``data.pkl`` is pickled by the stdlib
with stand-in ``torch`` modules (torch itself is not installed), so the bytecode is what
``torch.save`` would have written. The safetensors writer and the tensor layouts of each
architecture are in :mod:`sdrest.synthetic.headers` (``benchmarks/scan.py`` uses them too).
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
import sys
import types
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from sdrest.synthetic.headers import Shape

# ------------------------------------------------------------------ PyTorch files


class FakeTensor:
    """Pickles exactly like a torch tensor: _rebuild_tensor_v2(<persistent storage>, ...)."""

    def __init__(self, shape: Shape, dtype: str = "HalfStorage") -> None:
        self.shape = tuple(shape)
        self.dtype = dtype

    def __reduce__(self):
        torch_utils = sys.modules["torch._utils"]
        stride = tuple(math.prod(self.shape[i + 1 :]) for i in range(len(self.shape)))
        return (
            torch_utils._rebuild_tensor_v2,
            (_StorageRef(self.dtype, math.prod(self.shape)), 0, self.shape, stride, False, collections.OrderedDict()),
        )


class _StorageRef:
    counter = 0

    def __init__(self, dtype: str, numel: int) -> None:
        _StorageRef.counter += 1
        self.key = str(_StorageRef.counter)
        self.dtype = dtype
        self.numel = numel


@contextmanager
def fake_torch() -> Iterator[types.ModuleType]:
    """Stand-in ``torch`` and ``torch._utils`` modules, so the stdlib pickler can emit the
    same GLOBALs torch does (pickle checks that a global is importable by its name)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
        return ("tensor", size)

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("HalfStorage", "FloatStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
    torch._utils = utils
    with mock.patch.dict(sys.modules, {"torch": torch, "torch._utils": utils}):
        yield torch


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _StorageRef):
            return ("storage", getattr(sys.modules["torch"], obj.dtype), obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj: Any) -> bytes:
    """``obj`` pickled the way torch.save does (protocol 2, storages as persistent ids)."""
    with fake_torch():
        buffer = io.BytesIO()
        _TorchPickler(buffer, protocol=2).dump(obj)
        return buffer.getvalue()


def tensors_of(shapes: Mapping[str, Shape]) -> dict[str, FakeTensor]:
    return collections.OrderedDict((name, FakeTensor(shape)) for name, shape in shapes.items())


def write_torch_zip(
    path: Path, obj: Any = None, *, data_pkl: bytes | None = None, member: str = "archive/data.pkl"
) -> Path:
    """A torch >= 1.6 style checkpoint: ``archive/data.pkl`` + ``archive/version`` (+ a storage)."""
    data = data_pkl if data_pkl is not None else torch_pickle(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(member, data)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/1", b"\x00" * 16)
    return path


def write_torch_legacy(path: Path, obj: Any) -> Path:
    """The pre-1.6 format: magic, protocol version, sys info, object, storage keys, data."""
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(torch_pickle(obj))
        pickle.dump(["1"], f, protocol=2)
        f.write(b"\x00" * 64)
    return path


# ------------------------------------------------------------------ GGUF

_GGUF_TYPES = {
    "u8": (0, "<B"),
    "u32": (4, "<I"),
    "i32": (5, "<i"),
    "f32": (6, "<f"),
    "bool": (7, "<?"),
    "u64": (10, "<Q"),
    "i64": (11, "<q"),
    "f64": (12, "<d"),
}


def _gguf_str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf_value(kind: str, value: Any) -> bytes:
    if kind == "str":
        return struct.pack("<I", 8) + _gguf_str(value)
    if kind.startswith("arr:"):
        elem = kind[4:]
        if elem == "str":
            body = b"".join(_gguf_str(v) for v in value)
            etype = 8
        else:
            etype, fmt = _GGUF_TYPES[elem]
            body = b"".join(struct.pack(fmt, v) for v in value)
        return struct.pack("<I", 9) + struct.pack("<IQ", etype, len(value)) + body
    vtype, fmt = _GGUF_TYPES[kind]
    return struct.pack("<I", vtype) + struct.pack(fmt, value)


def gguf_bytes(kv: list[tuple[str, str, Any]], tensors: Mapping[str, tuple[Shape, int]], version: int = 3) -> bytes:
    """A GGUF header; ``kv`` as (key, kind, value), ``tensors`` as name -> (torch shape, ggml type)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv)))
    for key, kind, value in kv:
        out += _gguf_str(key) + _gguf_value(kind, value)
    offset = 0
    for name, (shape, ggml_type) in tensors.items():
        dims = tuple(reversed(shape))  # ggml order: innermost first
        out += _gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        offset += 32
    out += b"\x00" * (-len(out) % 32)
    return bytes(out)


def write_gguf(
    path: Path, kv: list[tuple[str, str, Any]], tensors: Mapping[str, tuple[Shape, int]], version: int = 3
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gguf_bytes(kv, tensors, version))
    return path
