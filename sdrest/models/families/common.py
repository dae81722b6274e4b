"""What every family's rules share: the verdict type and small readers of tensor shapes.

Shapes are torch order (outermost first): ggml's ``ne[0]`` is the *last* torch dim.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sdrest.models.headers import TensorInfo

UNKNOWN = "unknown"

Tensors = dict[str, TensorInfo]
#: (architecture, variant, details)
Verdict = tuple[str, str | None, dict[str, Any]]

#: The UNet's cross-attention context dim (or a CLIP text encoder's width) -> architecture.
CONTEXT_TO_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl_refiner"}


def shape_of(tensors: Tensors, name: str) -> tuple[int, ...] | None:
    info = tensors.get(name)
    return info.shape if info is not None else None


def dim_of(tensors: Tensors, name: str, index: int) -> int | None:
    """One dimension of a tensor's shape, ``None`` if the tensor or the dimension is missing."""
    shape = shape_of(tensors, name)
    if not shape:
        return None
    try:
        return shape[index]
    except IndexError:
        return None


def first_dim(tensors: Tensors, names: Iterable[str], index: int) -> int | None:
    for name in names:
        value = dim_of(tensors, name, index)
        if value is not None:
            return value
    return None


def any_name_has(names: Iterable[str], needle: str) -> bool:
    return any(needle in n for n in names)


def common_prefix(names: list[str], candidates: tuple[str, ...]) -> str:
    for prefix in candidates:
        if any(n.startswith(prefix) for n in names):
            return prefix
    return ""
