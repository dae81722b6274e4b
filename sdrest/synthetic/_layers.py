"""Building blocks shared by the synthetic model generators.

Each generator describes a model as a flat list of :class:`TensorSpec`
(name, torch-order shape, init rule) that mirrors the parameter layout the
native stable-diffusion.cpp blocks declare (src/common_block.hpp,
src/ggml_extend.hpp). Values are produced lazily by :func:`materialize`, so a
spec list is cheap to build and can be shared with tests and the LoRA
generator without generating any data.
"""

from __future__ import annotations

import functools
import math
import statistics

import numpy as np

from .safetensors import DTYPES, TensorSpec, tensor_rng

__all__ = ["SpecList", "materialize"]


class SpecList:
    """Accumulates tensor specs for one model with a common weight init.

    ``weight_init`` is ``"normal"`` (N(0, ``std``), what the UNet / CLIP use)
    or ``"fan_in"`` (N(0, ``gain``/sqrt(fan_in)), needed by the decoders and
    convnets: with plain N(0, 0.02) their activations shrink layer after layer
    and the decoded images come out almost black). Norm layers get weight 1 /
    bias 0 and linear/conv biases are 0, like a freshly initialised network.
    """

    def __init__(self, weight_init: str = "normal", std: float = 0.02, gain: float = 1.0, dtype: str = "F16") -> None:
        self.specs: list[TensorSpec] = []
        self.weight_init = weight_init
        self.std = std
        self.gain = gain
        self.dtype = dtype

    # -- primitives ---------------------------------------------------------
    def add(
        self,
        name: str,
        shape: tuple[int, ...],
        init: str | None = None,
        std: float | None = None,
        values: tuple[float, ...] = (),
        row_gain: tuple[float, ...] = (),
    ) -> None:
        if init is None:
            init = self.weight_init
        if std is None:
            std = self.gain if init == "fan_in" else self.std
        shape = tuple(int(d) for d in shape)
        for extra in (values, row_gain):
            if extra and len(extra) != shape[0]:
                raise ValueError(f"{name}: per-row list of {len(extra)} for shape {shape}")
        spec = TensorSpec(
            name, shape, init, float(std), self.dtype, tuple(map(float, values)), tuple(map(float, row_gain))
        )
        self.specs.append(spec)

    def weight(self, name: str, shape: tuple[int, ...], std: float | None = None) -> None:
        self.add(name, shape, std=std)

    def bias(self, name: str, n: int) -> None:
        self.add(name, (n,), init="zeros", std=0.0)

    # -- layers (torch parameter shapes) ------------------------------------
    def linear(self, prefix: str, n_in: int, n_out: int, bias: bool = True, std: float | None = None) -> None:
        self.weight(f"{prefix}.weight", (n_out, n_in), std=std)
        if bias:
            self.bias(f"{prefix}.bias", n_out)

    def conv(self, prefix: str, n_in: int, n_out: int, k: int = 3, bias: bool = True, std: float | None = None) -> None:
        self.weight(f"{prefix}.weight", (n_out, n_in, k, k), std=std)
        if bias:
            self.bias(f"{prefix}.bias", n_out)

    def norm(self, prefix: str, n: int) -> None:
        """GroupNorm / LayerNorm affine parameters (weight 1, bias 0)."""
        self.add(f"{prefix}.weight", (n,), init="ones", std=0.0)
        self.add(f"{prefix}.bias", (n,), init="zeros", std=0.0)

    # -- bookkeeping --------------------------------------------------------
    @property
    def numel(self) -> int:
        return sum(s.numel for s in self.specs)

    def extend(self, other: SpecList) -> None:
        self.specs.extend(other.specs)


@functools.lru_cache(maxsize=1)
def _normal_quantiles() -> np.ndarray:
    """The 2**16 quantiles of N(0, 1) at probabilities (k + 0.5) / 2**16."""
    nd = statistics.NormalDist()
    n = 1 << 16
    return np.array([nd.inv_cdf((k + 0.5) / n) for k in range(n)], dtype=np.float64)


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...], std: float, dtype: np.dtype) -> np.ndarray:
    """N(0, std) samples drawn as random indices into a 65536-entry quantile
    table already converted to ``dtype``.

    Why not ``standard_normal(...).astype(float16)``: for the ~480M values of
    the checkpoint that costs ~11 s on 2 cores, mostly in the f32->f16
    conversion; a uint16 draw plus a table gather is ~3x faster and, at f16
    precision, indistinguishable from a true normal.
    """
    table = (_normal_quantiles() * std).astype(dtype)
    idx = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
    return table[idx]


def materialize(spec: TensorSpec, seed: int) -> np.ndarray:
    """Generate the values for ``spec`` (deterministic in seed + name).

    Plain random tensors come back already in the spec's dtype; the rest as
    float32 (the writer converts)."""
    if spec.init == "zeros":
        return np.zeros(spec.shape, dtype=np.float32)
    if spec.init == "ones":
        return np.ones(spec.shape, dtype=np.float32)
    if spec.init == "const":
        return np.full(spec.shape, spec.std, dtype=np.float32)
    if spec.init == "values":
        col = np.asarray(spec.values, dtype=np.float32).reshape((-1,) + (1,) * (len(spec.shape) - 1))
        return np.broadcast_to(col, spec.shape).copy()
    rng = tensor_rng(seed, spec.name)
    if spec.init == "normal":
        std = spec.std
    elif spec.init in ("fan_in", "fan_in_centered", "identity"):
        fan_in = math.prod(spec.shape[1:]) if len(spec.shape) > 1 else spec.shape[0]
        std = spec.std / math.sqrt(max(fan_in, 1))
    else:
        raise ValueError(f"unknown init {spec.init!r} for {spec.name}")
    plain = spec.init in ("normal", "fan_in") and not spec.row_gain
    out = _gaussian(rng, spec.shape, std, DTYPES[spec.dtype] if plain else np.dtype(np.float32))
    if plain:
        return out
    if spec.init == "fan_in_centered" and len(spec.shape) == 4:
        # Zero-sum kernels (per output and input channel): after a ReLU every
        # input channel has its own positive mean, which a plain random conv
        # turns into a large random per-output-channel offset (e.g. a whole
        # colour channel clamped to 0). Zero-sum kernels cancel any
        # spatially constant input, so the output is centred on the bias.
        out -= out.mean(axis=(2, 3), keepdims=True)
    if spec.init == "identity":
        # Pass-through plus noise: channel i -> i through the centre tap.
        n = min(spec.shape[0], spec.shape[1]) if len(spec.shape) > 1 else 0
        centre = tuple(d // 2 for d in spec.shape[2:])
        for i in range(n):
            tap = (i, i, *centre)
            out[tap] += 1.0
    if spec.row_gain:
        out *= np.asarray(spec.row_gain, dtype=np.float32).reshape((-1,) + (1,) * (len(spec.shape) - 1))
    return out
