"""Read tensor names, shapes and metadata from model files without loading any weights.

Why hand-written readers: the model library lists (and classifies) thousands of files,
some of them tens of GB, on every scan. Only the header of each is needed, so each
reader touches a few KB to a few MB at the start of the file and never the tensor
data. They are also the first code to see an untrusted file, so every length and count
read from the file is bounded before it is used, and every failure becomes a
:class:`HeaderError` with a short, user-facing reason.

Formats:

* safetensors (``.safetensors``/``.sft``): u64 little-endian header length N, then N
  bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``.
* GGUF v2/v3 (``.gguf``): ``"GGUF"``, u32 version, u64 tensor count, u64 kv count,
  typed key/value pairs, then per tensor: name, u32 n_dims, u64 dims (ggml order,
  innermost first), u32 ggml type, u64 offset.
* PyTorch pickles (``.ckpt``/``.pt``/``.pth``): see :mod:`sdrest.models.torchfile`.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sdrest.errors import SdrestError

__all__ = [
    "GGML_TYPES",
    "MAX_SAFETENSORS_HEADER",
    "Header",
    "HeaderError",
    "TensorInfo",
    "read_gguf",
    "read_header",
    "read_safetensors",
]

#: A real header is at most a few MB (~1,000 tensors x ~150 bytes, plus metadata);
#: anything above this is a corrupt or hostile length field, not a model.
MAX_SAFETENSORS_HEADER = 100_000_000
#: GGUF limits: far above any real model, low enough to stop a hostile count early.
MAX_GGUF_TENSORS = 1_000_000
MAX_GGUF_KV = 1_000_000
MAX_GGUF_STRING = 64 << 20
MAX_GGUF_ARRAY = 1 << 28
MAX_GGUF_DIMS = 8
#: Metadata values longer than this are summarised (kohya stores whole tag histograms).
_MAX_META_VALUE = 256
_MAX_META_ITEMS = 64

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
GGUF_EXTENSIONS = (".gguf",)
TORCH_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")

#: ggml tensor type ids (ggml.h ``enum ggml_type``) -> names, for dtype statistics.
GGML_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
}


class HeaderError(SdrestError, ValueError):
    """The file is not a readable model file; ``str()`` is a short reason for users."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's shape in torch order (outermost first) and dtype; ``None`` when the
    format did not say (a pickle read in names-only fallback mode)."""

    shape: tuple[int, ...] | None
    dtype: str | None

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 0


@dataclass
class Header:
    """What a reader found: the tensors and whatever metadata the format carries."""

    format: str
    tensors: dict[str, TensorInfo]
    metadata: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _summarise_metadata(items: dict[str, Any]) -> dict[str, Any]:
    """Small values kept as-is, long ones replaced by their length (for JSON listings)."""
    out: dict[str, Any] = {}
    for key, value in items.items():
        if len(out) >= _MAX_META_ITEMS:
            break
        if isinstance(value, (str, bytes, list, tuple)) and len(value) > _MAX_META_VALUE:
            out[key] = f"<{type(value).__name__} of length {len(value)}>"
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, int, float, bool)) else repr(v) for v in value]
        else:
            out[key] = repr(value)[:_MAX_META_VALUE]
    return out


# --------------------------------------------------------------------------- safetensors


def read_safetensors(path: Path, file: BinaryIO | None = None) -> Header:
    """Parse a safetensors header; raises :class:`HeaderError` for corrupt files."""
    size = path.stat().st_size
    with open(path, "rb") if file is None else contextlib.nullcontext(file) as f:
        f.seek(0)
        prefix = f.read(8)
        if len(prefix) < 8:
            raise HeaderError("truncated safetensors header (file shorter than 8 bytes)")
        (length,) = struct.unpack("<Q", prefix)
        if length == 0:
            raise HeaderError("invalid safetensors header (length 0)")
        if length > MAX_SAFETENSORS_HEADER:
            raise HeaderError(f"invalid safetensors header (claims {length} bytes, limit {MAX_SAFETENSORS_HEADER})")
        if 8 + length > size:
            raise HeaderError(f"truncated safetensors header (needs {8 + length} bytes, file has {size})")
        raw = f.read(length)
    if len(raw) < length:
        raise HeaderError("truncated safetensors header")
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise HeaderError("invalid safetensors header (not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise HeaderError(f"invalid safetensors header JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(parsed, dict):
        raise HeaderError(f"invalid safetensors header (JSON {type(parsed).__name__}, expected an object)")

    metadata = parsed.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise HeaderError("invalid safetensors header (__metadata__ is not an object)")
    tensors: dict[str, TensorInfo] = {}
    data_end = 0
    for name, entry in parsed.items():
        try:
            dtype = entry["dtype"]
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (TypeError, KeyError, ValueError):
            raise HeaderError(f"invalid safetensors header (malformed entry for tensor {name!r})") from None
        if not isinstance(dtype, str) or any(d < 0 for d in shape) or not 0 <= begin <= end:
            raise HeaderError(f"invalid safetensors header (malformed entry for tensor {name!r})")
        tensors[name] = TensorInfo(shape, dtype)
        data_end = max(data_end, end)
    available = size - 8 - length
    if data_end > available:
        raise HeaderError(
            f"truncated safetensors data (header describes {data_end} bytes of tensor data, "
            f"file has {available}); incomplete download?"
        )
    return Header("safetensors", tensors, _summarise_metadata(metadata), {"header_bytes": length})


# --------------------------------------------------------------------------- GGUF


class _Reader:
    """Exact-size reads that turn a short read into 'truncated GGUF'."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file

    def read(self, n: int) -> bytes:
        data = self.file.read(n)
        if len(data) != n:
            raise HeaderError("truncated GGUF file")
        return data

    def skip(self, n: int) -> None:
        # seek() past EOF succeeds silently, so check against the real size afterwards.
        self.file.seek(n, 1)

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.read(8))[0]

    def string(self) -> str:
        length = self.u64()
        if length > MAX_GGUF_STRING:
            raise HeaderError(f"invalid GGUF file (string of {length} bytes)")
        return self.read(length).decode("utf-8", errors="replace")


# GGUF value type -> struct format for fixed-size scalars.
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
#: Arrays longer than this are kept as their length only (tokenizer vocabularies).
_GGUF_KEEP_ARRAY = 16


def _gguf_value(r: _Reader, vtype: int, depth: int = 0) -> Any:
    if vtype in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[vtype]
        return struct.unpack(fmt, r.read(struct.calcsize(fmt)))[0]
    if vtype == _GGUF_STRING:
        return r.string()
    if vtype == _GGUF_ARRAY:
        if depth > 2:
            raise HeaderError("invalid GGUF file (nested arrays too deep)")
        etype = r.u32()
        count = r.u64()
        if count > MAX_GGUF_ARRAY:
            raise HeaderError(f"invalid GGUF file (array of {count} elements)")
        if etype in _GGUF_SCALARS and count > _GGUF_KEEP_ARRAY:
            r.skip(count * struct.calcsize(_GGUF_SCALARS[etype]))
            return _Summary(count)
        values = [_gguf_value(r, etype, depth + 1) for _ in range(count)]
        return values if count <= _GGUF_KEEP_ARRAY else _Summary(count)
    raise HeaderError(f"invalid GGUF file (unknown value type {vtype})")


class _Summary:
    """A long GGUF array, kept as its length."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __repr__(self) -> str:
        return f"<array of {self.count}>"


def read_gguf(path: Path, file: BinaryIO | None = None) -> Header:
    """Parse a GGUF v2/v3 header (metadata and tensor infos); raises :class:`HeaderError`."""
    size = path.stat().st_size
    with open(path, "rb", buffering=1 << 16) if file is None else contextlib.nullcontext(file) as f:
        f.seek(0)
        r = _Reader(f)
        if f.read(4) != b"GGUF":
            raise HeaderError("not a GGUF file (bad magic)")
        version = r.u32()
        if version not in (2, 3):
            raise HeaderError(f"unsupported GGUF version {version} (only 2 and 3)")
        n_tensors = r.u64()
        n_kv = r.u64()
        if n_tensors > MAX_GGUF_TENSORS:
            raise HeaderError(f"invalid GGUF file (claims {n_tensors} tensors)")
        if n_kv > MAX_GGUF_KV:
            raise HeaderError(f"invalid GGUF file (claims {n_kv} metadata entries)")
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = r.string()
            metadata[key] = _gguf_value(r, r.u32())
            if f.tell() > size:
                raise HeaderError("truncated GGUF file")
        tensors: dict[str, TensorInfo] = {}
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.u32()
            if n_dims > MAX_GGUF_DIMS:
                raise HeaderError(f"invalid GGUF file (tensor {name!r} has {n_dims} dimensions)")
            dims = [r.u64() for _ in range(n_dims)]
            ggml_type = r.u32()
            r.u64()  # offset into the data section
            # ggml lists dimensions innermost first; torch (and the classifier) outermost first.
            tensors[name] = TensorInfo(tuple(reversed(dims)), GGML_TYPES.get(ggml_type, f"type{ggml_type}"))
        if f.tell() > size:
            raise HeaderError("truncated GGUF file")
    meta = {k: (f"<array of {v.count}>" if isinstance(v, _Summary) else v) for k, v in metadata.items()}
    return Header("gguf", tensors, _summarise_metadata(meta), {"gguf_version": version})


# --------------------------------------------------------------------------- dispatch


def sniff(prefix: bytes) -> str | None:
    """The format the first bytes announce, or ``None`` if they say nothing certain."""
    if prefix.startswith(b"GGUF"):
        return "gguf"
    if prefix.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if len(prefix) >= 9 and prefix[8:9] == b"{":
        return "safetensors"
    return None


def read_header(path: Path) -> Header:
    """Read any supported file by content (extension only breaks ties); :class:`HeaderError` if none fits."""
    from sdrest.models import torchfile  # local: torchfile imports this module

    with open(path, "rb", buffering=1 << 16) as f:
        prefix = f.read(16)
        if not prefix:
            raise HeaderError("empty file")
        kind = sniff(prefix)
        ext = path.suffix.lower()
        if kind == "gguf":
            return read_gguf(path, f)
        if kind == "safetensors":
            return read_safetensors(path, f)
        if kind == "zip":
            return torchfile.read_torch_zip(path)
        if ext in TORCH_EXTENSIONS:
            if prefix[:1] == b"\x80":
                return torchfile.read_torch_legacy(path, f)
            raise HeaderError("not a zip archive (nor a legacy PyTorch pickle)")
        if ext in GGUF_EXTENSIONS:
            raise HeaderError("not a GGUF file (bad magic)")
        if ext in SAFETENSORS_EXTENSIONS:
            return read_safetensors(path, f)
        raise HeaderError("unrecognized file format")
