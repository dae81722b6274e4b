"""Everything of the C API that is not a diffusion context: ESRGAN upscaling, model
conversion (quantisation) and Canny edge preprocessing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from sdrest._native import NativeLibrary, ffi, load_library
from sdrest.engine.callbacks import NativeHooks, hooks_for
from sdrest.engine.enums import parse_enum
from sdrest.engine.images import fill_sd_image, image_from_sd
from sdrest.errors import GenerationError, ModelLoadError


class Upscaler:
    """An ESRGAN upscaler (``upscaler_ctx_t``); ``close()`` or ``with`` frees it."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int = -1,
        tile_size: int = 128,
        offload_params_to_cpu: bool = False,
        direct: bool = False,
        native: NativeLibrary | None = None,
    ) -> None:
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"model_path: no such file: {os.fspath(model_path)}")
        if not isinstance(tile_size, int) or tile_size < 1:
            raise ValueError(f"tile_size: must be a positive integer, got {tile_size!r}")
        self.model_path = Path(model_path)
        self._native = native or load_library()
        self._hooks: NativeHooks = hooks_for(self._native)
        lib = self._native.lib
        threads = n_threads if n_threads > 0 else int(lib.sd_get_num_physical_cores())
        with self._hooks.session() as capture:
            ptr = lib.new_upscaler_ctx(os.fsencode(model_path), offload_params_to_cpu, direct, threads, tile_size)
        if ptr == ffi.NULL:
            raise ModelLoadError(
                f"could not load upscaler {os.fspath(model_path)}", capture.problems() or capture.tail()
            )
        self._ptr: Any = ffi.gc(ptr, lib.free_upscaler_ctx)

    @property
    def scale(self) -> int:
        """The model's native upscale factor (4 for the usual ESRGAN x4 models)."""
        return int(self._native.lib.get_upscale_factor(self._require_open()))

    def upscale(self, image: Image.Image, factor: int | None = None) -> Image.Image:
        """Upscale ``image`` by ``factor`` (default: the model's own factor)."""
        if factor is None:
            factor = self.scale
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise ValueError(f"factor: must be a positive integer, got {factor!r}")
        ptr = self._require_open()
        lib = self._native.lib
        keep: list[Any] = []
        c_image = ffi.new("sd_image_t *")
        fill_sd_image(c_image, image, "RGB", keep)
        with self._hooks.session() as capture:
            result = lib.upscale(ptr, c_image[0], factor)
        if result.data == ffi.NULL:
            raise GenerationError("upscale produced no image", capture.problems() or capture.tail())
        try:
            return image_from_sd(result)
        finally:
            lib.free(result.data)

    def _require_open(self) -> Any:
        if self._ptr is None:
            raise ValueError("this Upscaler is closed")
        return self._ptr

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            with self._hooks.lock:
                ffi.release(ptr)

    def __enter__(self) -> Upscaler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def convert(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    output_type: str | int = "q8_0",
    vae_path: str | os.PathLike[str] | None = None,
    tensor_type_rules: str | None = None,
    convert_name: bool = False,
    native: NativeLibrary | None = None,
) -> Path:
    """Convert a checkpoint to GGUF with weights of ``output_type`` (e.g. ``"q8_0"``, ``"f16"``)."""
    if not Path(input_path).is_file():
        raise FileNotFoundError(f"input_path: no such file: {os.fspath(input_path)}")
    if vae_path is not None and not Path(vae_path).is_file():
        raise FileNotFoundError(f"vae_path: no such file: {os.fspath(vae_path)}")
    output = Path(output_path)
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output_path: no such directory: {output.parent}")
    native = native or load_library()
    lib = native.lib
    wtype = parse_enum(lib, "enum sd_type_t", output_type, "output_type")
    with hooks_for(native).session() as capture:
        ok = lib.convert(
            os.fsencode(input_path),
            os.fsencode(vae_path) if vae_path else ffi.NULL,
            os.fsencode(output),
            wtype,
            # The library builds a std::string from the rules: NULL would abort.
            (tensor_type_rules or "").encode(),
            bool(convert_name),
        )
    if not ok or not output.is_file():
        raise GenerationError(f"could not convert {os.fspath(input_path)}", capture.problems() or capture.tail())
    return output


def canny(
    image: Image.Image,
    *,
    high_threshold: float = 0.08,
    low_threshold: float = 0.08,
    weak: float = 0.8,
    strong: float = 1.0,
    inverse: bool = False,
    native: NativeLibrary | None = None,
) -> Image.Image:
    """Canny edge map of ``image`` (the library's ControlNet preprocessor; sd-cli's defaults)."""
    for name, value in (
        ("high_threshold", high_threshold),
        ("low_threshold", low_threshold),
        ("weak", weak),
        ("strong", strong),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: expected a number, got {value!r}")
    native = native or load_library()
    keep: list[Any] = []
    c_image = ffi.new("sd_image_t *")
    fill_sd_image(c_image, image, "RGB", keep)
    with hooks_for(native).session() as capture:
        ok = native.lib.preprocess_canny(c_image[0], high_threshold, low_threshold, weak, strong, inverse)
    if not ok:
        raise GenerationError("canny preprocessing failed", capture.problems() or capture.tail())
    # The library edits the pixels in place.
    return image_from_sd(c_image[0])
