"""Writers of small synthetic model files for the model-library tests.

Only headers matter to detection, so tensor data is never generated: safetensors files
get the size their offsets describe via ``truncate`` (a sparse file: no disk, no time),
GGUF files stop after the tensor infos, and PyTorch files are real zips whose
``data.pkl`` is pickled by the stdlib with stand-in ``torch`` modules (torch itself is
not installed), so the bytecode is what ``torch.save`` would have written.
"""

from __future__ import annotations

import collections
import io
import json
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

Shape = tuple[int, ...]

_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8}


def write_safetensors(path: Path, tensors: Mapping[str, Shape | tuple[Shape, str]],
                      metadata: Mapping[str, str] | None = None) -> Path:
    """A valid safetensors file: consistent offsets, data region as a sparse hole."""
    header: dict[str, Any] = {}
    offset = 0
    for name, spec in tensors.items():
        shape, dtype = (spec, "F16") if not spec or isinstance(spec[0], int) else spec
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


# ------------------------------------------------------------------ architectures

def sd_unet(context: int, *, in_channels: int = 4, middle: bool = True, out_71: bool = True,
            prefix: str = "model.diffusion_model.") -> dict[str, Shape]:
    t = {
        f"{prefix}input_blocks.0.0.weight": (320, in_channels, 3, 3),
        f"{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
        f"{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight": (320, context),
        f"{prefix}output_blocks.3.1.transformer_blocks.0.attn1.to_k.weight": (640, 640),
        f"{prefix}out.2.weight": (4, 320, 3, 3),
    }
    if middle:
        t[f"{prefix}middle_block.1.proj_in.weight"] = (1280, 1280, 1, 1)
    if out_71:
        t[f"{prefix}output_blocks.7.1.proj_in.weight"] = (320, 320, 1, 1)
    return t


def sd_vae(latent: int = 4, prefix: str = "first_stage_model.") -> dict[str, Shape]:
    return {f"{prefix}decoder.conv_in.weight": (512, latent, 3, 3),
            f"{prefix}encoder.conv_in.weight": (128, 3, 3, 3),
            f"{prefix}encoder.conv_out.weight": (2 * latent, 512, 3, 3)}


def sd1_checkpoint(**unet: Any) -> dict[str, Shape]:
    return {**sd_unet(768, **unet),
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
            **sd_vae()}


def sd2_checkpoint() -> dict[str, Shape]:
    return {**sd_unet(1024), "cond_stage_model.model.token_embedding.weight": (49408, 1024), **sd_vae()}


def sdxl_checkpoint(in_channels: int = 4) -> dict[str, Shape]:
    p = "model.diffusion_model."
    return {
        f"{p}input_blocks.0.0.weight": (320, in_channels, 3, 3),
        f"{p}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        f"{p}label_emb.0.0.weight": (1280, 2816),
        f"{p}middle_block.1.proj_in.weight": (1280, 1280),
        f"{p}output_blocks.3.1.transformer_blocks.1.attn1.to_k.weight": (640, 640),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
        **sd_vae(),
    }


def sd3_checkpoint() -> dict[str, Shape]:
    p = "model.diffusion_model."
    return {f"{p}joint_blocks.0.context_block.attn.qkv.weight": (4608, 1536),
            f"{p}x_embedder.proj.weight": (1536, 16, 2, 2),
            "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
            **sd_vae(16)}


def flux_model(prefix: str = "model.diffusion_model.", in_features: int = 64) -> dict[str, Shape]:
    return {f"{prefix}img_in.weight": (3072, in_features),
            f"{prefix}double_blocks.0.img_attn.qkv.weight": (9216, 3072),
            f"{prefix}single_blocks.0.linear1.weight": (21504, 3072)}


def kohya_lora(pairs: Mapping[str, tuple[int, int]], rank: int = 4) -> dict[str, Any]:
    """``module -> (in, out)`` as kohya writes them (down [rank, in], up [out, rank], alpha [])."""
    t: dict[str, Any] = {}
    for module, (n_in, n_out) in pairs.items():
        t[f"{module}.lora_down.weight"] = (rank, n_in)
        t[f"{module}.lora_up.weight"] = (n_out, rank)
        t[f"{module}.alpha"] = ((), "F32")
    return t


def taesd(latent: int = 4) -> dict[str, Shape]:
    # madebyollin's numbering: decoder.layers.0 is a Clamp (no weights), 1 the first conv.
    return {"encoder.layers.0.weight": (64, 3, 3, 3), "encoder.layers.14.weight": (latent, 64, 3, 3),
            "decoder.layers.1.weight": (64, latent, 3, 3), "decoder.layers.3.conv.0.weight": (64, 64, 3, 3)}


def esrgan_basicsr(blocks: int = 23, scale: int = 4) -> dict[str, Shape]:
    t: dict[str, Shape] = {"conv_first.weight": (64, 3, 3, 3)}
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                t[f"body.{i}.rdb{r}.conv{c}.weight"] = (32 if c < 5 else 64, 64 + 32 * (c - 1), 3, 3)
    t["conv_body.weight"] = (64, 64, 3, 3)
    if scale >= 2:
        t["conv_up1.weight"] = (64, 64, 3, 3)
    if scale == 4:
        t["conv_up2.weight"] = (64, 64, 3, 3)
    t["conv_hr.weight"] = (64, 64, 3, 3)
    t["conv_last.weight"] = (3, 64, 3, 3)
    return t


def esrgan_old_names(blocks: int = 23) -> list[str]:
    """Original ESRGAN (x4) key names: model.0 conv, model.1.sub.N.RDBk, upsamplers to model.10."""
    names = ["model.0.weight", "model.0.bias"]
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                names.append(f"model.1.sub.{i}.RDB{r}.conv{c}.0.weight")
    names += [f"model.1.sub.{blocks}.weight", "model.3.weight", "model.6.weight", "model.8.weight",
              "model.10.weight"]
    return names


# ------------------------------------------------------------------ PyTorch files

class FakeTensor:
    """Pickles exactly like a torch tensor: _rebuild_tensor_v2(<persistent storage>, ...)."""

    def __init__(self, shape: Shape, dtype: str = "HalfStorage") -> None:
        self.shape = tuple(shape)
        self.dtype = dtype

    def __reduce__(self):
        torch_utils = sys.modules["torch._utils"]
        stride = tuple(math.prod(self.shape[i + 1:]) for i in range(len(self.shape)))
        return (torch_utils._rebuild_tensor_v2,
                (_StorageRef(self.dtype, math.prod(self.shape)), 0, self.shape, stride, False,
                 collections.OrderedDict()))


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


def write_torch_zip(path: Path, obj: Any = None, *, data_pkl: bytes | None = None,
                    member: str = "archive/data.pkl") -> Path:
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

_GGUF_TYPES = {"u8": (0, "<B"), "u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "bool": (7, "<?"),
               "u64": (10, "<Q"), "i64": (11, "<q"), "f64": (12, "<d")}


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


def gguf_bytes(kv: list[tuple[str, str, Any]], tensors: Mapping[str, tuple[Shape, int]],
               version: int = 3) -> bytes:
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


def write_gguf(path: Path, kv: list[tuple[str, str, Any]], tensors: Mapping[str, tuple[Shape, int]],
               version: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gguf_bytes(kv, tensors, version))
    return path
