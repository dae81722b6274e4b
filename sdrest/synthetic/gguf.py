"""A minimal, dependency-free GGUF (v3) writer for synthetic models.

Why: some layouts are only accepted at their real, fixed sizes (the smallest Wan
diffusion model has 1.4 billion weights, see :mod:`sdrest.synthetic.wan`). In f16 that
is 2.8 GB; as GGUF with ``Q2_K`` blocks it is ~0.47 GB, and the library runs quantised
weights directly. Random Q2_K blocks are generated here without quantising anything:
each block gets random 2-bit codes and 4-bit scales with ``dmin = 1.5 * d`` and equal
scale/min nibbles, which makes every weight ``d * scale * (q - 1.5)``: zero-mean,
symmetric, with a standard deviation set per tensor.

Format (ggml/docs/gguf.md): magic ``GGUF``, version 3, tensor and key/value counts, the
key/values, one info record per tensor (name, dims innermost first, type, offset), then the
data, each tensor aligned to 32 bytes.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GgufTensor", "q2k_blocks", "write_gguf"]

#: ggml type id and (block size, bytes per block) of the types written here.
GGML_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q2_K": (10, 256, 84)}
_ALIGN = 32
_STRING = 8  # GGUF value type of a string


@dataclass(frozen=True)
class GgufTensor:
    """One tensor: its name, torch-order shape (outermost first) and ggml type name."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "F32"

    @property
    def nbytes(self) -> int:
        _, block, size = GGML_TYPES[self.dtype]
        numel = math.prod(self.shape)
        if numel % block:
            raise ValueError(f"{self.name}: {numel} elements is not a multiple of the {self.dtype} block ({block})")
        return numel // block * size


def q2k_blocks(rng: np.random.Generator, numel: int, std: float) -> np.ndarray:
    """Random Q2_K blocks (uint8, 84 bytes each) whose weights have standard deviation ``std``."""
    blocks = numel // 256
    out = np.empty((blocks, 84), dtype=np.uint8)
    scales = rng.integers(1, 16, size=(blocks, 16), dtype=np.uint8)
    out[:, :16] = scales | (scales << 4)  # low nibble scale, high nibble min: equal
    out[:, 16:80] = np.frombuffer(rng.bytes(blocks * 64), dtype=np.uint8).reshape(blocks, 64)
    # std of scale * (q - 1.5) with scale uniform in 1..15 and q uniform in 0..3:
    # sqrt(E[scale^2] * E[(q - 1.5)^2]) = sqrt(82.67 * 1.25).
    d = std / math.sqrt(82.67 * 1.25)
    out[:, 80:84] = np.frombuffer(np.array([d, 1.5 * d], dtype="<f2").tobytes(), dtype=np.uint8)
    return out


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(
    path: str | os.PathLike[str],
    tensors: Sequence[GgufTensor],
    make: Callable[[GgufTensor], np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Write ``tensors`` to ``path``, calling ``make(tensor)`` for each one's data (an array of
    its dtype for F32/F16, raw uint8 blocks for quantised types). Returns bytes written."""
    metadata = dict(metadata or {})
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        head += _string(key) + struct.pack("<I", _STRING) + _string(str(value))
    offset = 0
    offsets = []
    for tensor in tensors:
        dims = tuple(reversed(tensor.shape))  # GGUF lists the innermost dimension first
        head += _string(tensor.name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", GGML_TYPES[tensor.dtype][0], offset)
        offsets.append(offset)
        offset += tensor.nbytes + (-tensor.nbytes % _ALIGN)
    head += b"\0" * (-len(head) % _ALIGN)
    written = len(head)
    with open(path, "wb") as fh:
        fh.write(head)
        for tensor in tensors:
            data = np.ascontiguousarray(make(tensor))
            raw = data.tobytes()
            if len(raw) != tensor.nbytes:
                raise ValueError(f"{tensor.name}: made {len(raw)} bytes, expected {tensor.nbytes}")
            fh.write(raw + b"\0" * (-len(raw) % _ALIGN))
            written += len(raw) + (-len(raw) % _ALIGN)
    return written
