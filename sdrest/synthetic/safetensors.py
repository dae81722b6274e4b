"""A minimal, dependency-free safetensors writer and header reader.

Why hand-written: the synthetic test models must be creatable with numpy
alone (no torch, no ``safetensors`` wheel), and a full SD1 checkpoint is
~0.9 GB, so tensors are generated and streamed to disk one at a time
instead of being held in memory together.

Format (https://github.com/huggingface/safetensors):
    8 bytes   little-endian u64 N, the JSON header length
    N bytes   JSON: {"name": {"dtype", "shape", "data_offsets": [b, e]}, ...,
              "__metadata__": {str: str}}, padded with spaces so the data
              section starts at a multiple of 8
    rest      raw little-endian tensor bytes; offsets are relative to the
              start of this section, contiguous and without holes
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TensorInfo",
    "TensorSpec",
    "read_safetensors_header",
    "read_tensor",
    "tensor_rng",
    "write_safetensors",
]

#: safetensors dtype name -> numpy dtype (little-endian).
DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}

#: Data is written in chunks of at most this many elements so that even the
#: largest tensor (CLIP's 49408x768 token embedding) needs little extra memory.
_CHUNK_ELEMS = 1 << 22


@dataclass(frozen=True)
class TensorSpec:
    """One tensor to generate: its name, torch-order shape, dtype and init rule.

    ``init`` is interpreted by the generator that owns the spec (see
    :func:`sdrest.synthetic._layers.materialize`): ``"normal"`` (N(0, std)),
    ``"fan_in"`` (N(0, std/sqrt(fan_in)), ``std`` acting as a gain),
    ``"fan_in_centered"`` (the same, each conv kernel shifted to sum 0),
    ``"identity"`` (channel i -> i pass-through plus ``"fan_in"`` noise),
    ``"ones"``, ``"zeros"``, ``"const"`` (filled with ``std``), ``"values"``
    (``values[i]`` along dim 0). ``row_gain``, if set, scales random values
    per output row (dim 0).
    """

    name: str
    shape: tuple[int, ...]
    init: str = "normal"
    std: float = 0.02
    dtype: str = "F16"
    values: tuple[float, ...] = ()
    row_gain: tuple[float, ...] = ()

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPES[self.dtype].itemsize


@dataclass(frozen=True)
class TensorInfo:
    """A tensor entry as read back from a safetensors header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute file offset of the first data byte
    end: int  # absolute file offset one past the last data byte


def tensor_rng(seed: int, name: str) -> np.random.Generator:
    """A Generator that depends only on (seed, tensor name).

    Keying on the name (crc32, stable across runs and platforms) makes every
    tensor's values independent of generation order, so adding a tensor to a
    spec does not change the others.
    """
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8"))])


def _build_header(specs: Sequence[TensorSpec], metadata: Mapping[str, str] | None) -> bytes:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"duplicate tensor name {spec.name!r}")
        if spec.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {spec.dtype!r} for {spec.name!r}")
        seen.add(spec.name)
        header[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces (valid JSON whitespace) so the data section is 8-aligned.
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw


def write_safetensors(
    path: str | os.PathLike[str],
    specs: Sequence[TensorSpec],
    make: Callable[[TensorSpec], np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Write ``specs`` to ``path``, calling ``make(spec)`` for each tensor's data.

    The header is computed from the specs up front, then each tensor is
    produced, checked, converted to the spec dtype and written before the next
    one is made, so peak memory is about one tensor. Returns bytes written.
    The caller is responsible for atomicity (write to a temp name, rename).
    """
    header = _build_header(specs, metadata)
    total = len(header)
    with open(path, "wb") as f:
        f.write(header)
        for spec in specs:
            arr = np.asarray(make(spec))
            if tuple(arr.shape) != tuple(spec.shape):
                raise ValueError(f"{spec.name}: made shape {arr.shape}, spec says {spec.shape}")
            flat = arr.reshape(-1)
            dt = DTYPES[spec.dtype]
            for start in range(0, flat.size, _CHUNK_ELEMS):
                chunk = np.ascontiguousarray(flat[start : start + _CHUNK_ELEMS], dtype=dt)
                f.write(chunk.tobytes())
            total += spec.nbytes
        f.flush()
        os.fsync(f.fileno())
    return total


def read_safetensors_header(path: str | os.PathLike[str]) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read the tensor table and ``__metadata__`` of a safetensors file (no data)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
    if len(raw) != n:
        raise ValueError(f"{path}: truncated header")
    header = json.loads(raw.decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    infos = {
        name: TensorInfo(
            name=name,
            dtype=entry["dtype"],
            shape=tuple(entry["shape"]),
            begin=base + entry["data_offsets"][0],
            end=base + entry["data_offsets"][1],
        )
        for name, entry in header.items()
    }
    return infos, dict(metadata)


def read_tensor(path: str | os.PathLike[str], name: str) -> np.ndarray:
    """Read one tensor's data (for tests; uses a memory map, copies the tensor)."""
    infos, _ = read_safetensors_header(path)
    info = infos[name]
    dt = DTYPES[info.dtype]
    count = (info.end - info.begin) // dt.itemsize
    data = np.fromfile(path, dtype=dt, count=count, offset=info.begin)
    return data.reshape(info.shape)
