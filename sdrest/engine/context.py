"""Context: one loaded model (an ``sd_ctx_t``) and the generations made with it.

A :class:`Context` owns its native context: :meth:`Context.close` (or leaving a ``with``
block) frees it exactly once, and the garbage collector does so if you forget. Every image
buffer the library returns is copied into Pillow and freed before the call returns.

Thread safety: the library's callbacks are process-global, so all native calls made through
the same library are serialised (see :mod:`sdrest.engine.callbacks`). Use one thread per
process for generation, as the sdrest worker does. The one exception is
:meth:`Context.cancel`, which any other thread may call while a generation runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdrest._native import NativeLibrary, ffi, load_library
from sdrest.engine.callbacks import NativeHooks, PreviewHandler, ProgressHandler, hooks_for
from sdrest.engine.images import image_from_sd
from sdrest.engine.params import (
    ContextParams,
    ImageGenParams,
    Lora,
    VideoGenParams,
)
from sdrest.engine.structs import Arena, struct_to_dict
from sdrest.errors import GenerationCancelled, GenerationError, ModelLoadError

#: Largest seed handed out for "random" (-1): fits every client's int32 parsing.
MAX_RANDOM_SEED = 2**31 - 1

#: The library's own account of the weights it loaded (one INFO line at the end of a load).
_PARAMS_MEMORY = re.compile(r"total params memory size = [0-9.]+MB \(VRAM ([0-9.]+)MB, RAM ([0-9.]+)MB\)")


@dataclass
class Generation:
    """The result of one ``generate_image`` call."""

    images: list[Image.Image]
    seeds: list[int]  # one per image: the library uses seed, seed+1, ...
    params: ImageGenParams  # what was asked, with the real seed filled in
    seconds: float = 0.0
    log_tail: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the library's WARN/ERROR lines
    cancelled: bool = False  # a "new_latents" cancel cut the batch short: fewer images


def resolve_seed(seed: int | None) -> int:
    """A negative or missing seed means random; pick it here so it can be reported."""
    if seed is None or seed < 0:
        return secrets.randbelow(MAX_RANDOM_SEED + 1)
    return seed


class Context:
    """A loaded model. ``Context(ContextParams(model_path=...))`` or ``Context(model_path=...)``."""

    def __init__(
        self,
        params: ContextParams | None = None,
        *,
        native: NativeLibrary | None = None,
        on_log: Callable[[int, str], None] | None = None,
        **fields: Any,
    ) -> None:
        # Guards _ptr between close() and cancel() (another thread): never cancel a freed context.
        self._cancel_lock = threading.Lock()
        self._cancel_mode: int | None = None  # the request made during the running call, if any
        self._ptr: Any = None
        if params is None:
            params = ContextParams(**fields)
        elif fields:
            params = dataclasses.replace(params, **fields)
        params.validate()
        self.params = params
        self._native = native or load_library()
        self._hooks: NativeHooks = hooks_for(self._native)
        lib = self._native.lib
        self.load_seconds = 0.0
        started = time.perf_counter()
        with self._hooks.session(on_log=on_log) as capture:
            arena = Arena()
            c_params = ffi.new("sd_ctx_params_t *")
            lib.sd_ctx_params_init(c_params)
            params.fill(c_params, lib, arena)
            ptr = lib.new_sd_ctx(c_params)
        self.load_seconds = time.perf_counter() - started
        if ptr == ffi.NULL:
            what = params.model_path or params.diffusion_model_path
            raise ModelLoadError(f"could not load model {what}", capture.problems() or capture.tail())
        self._ptr = ffi.gc(ptr, lib.free_sd_ctx)
        #: Bytes of weights the library says it holds: {"ram_bytes", "vram_bytes"}; None if it did not say.
        self.memory: dict[str, int] | None = _params_memory(capture.lines)
        # With free_params_immediately the library drops its weights after one generation
        # and would crash on the next: refuse that instead.
        self._single_use = bool(params.free_params_immediately)
        self._used = False

    # --- lifecycle ---

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Free the native context now (idempotent)."""
        with self._cancel_lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            with self._hooks.lock:
                ffi.release(ptr)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> Any:
        if self._ptr is None:
            raise ValueError("this Context is closed")
        return self._ptr

    def _claim_generation(self) -> Any:
        ptr = self._require_open()
        if self._single_use and self._used:
            raise ValueError(
                "this Context was created with free_params_immediately=True and has "
                "already generated once; create a new Context"
            )
        self._used = True
        return ptr

    # --- information ---

    @property
    def supports_image_generation(self) -> bool:
        return bool(self._native.lib.sd_ctx_supports_image_generation(self._require_open()))

    @property
    def supports_video_generation(self) -> bool:
        return bool(self._native.lib.sd_ctx_supports_video_generation(self._require_open()))

    def default_sample_method(self) -> str:
        from sdrest.engine.enums import enum_name

        lib = self._native.lib
        return enum_name(lib, "enum sample_method_t", lib.sd_get_default_sample_method(self._require_open()))

    def default_scheduler(self, sample_method: str) -> str:
        """The scheduler the library uses for ``sample_method`` when none is asked for."""
        from sdrest.engine.enums import enum_name, parse_enum

        lib = self._native.lib
        method = parse_enum(lib, "enum sample_method_t", sample_method, "sample_method")
        return enum_name(lib, "enum scheduler_t", lib.sd_get_default_scheduler(self._require_open(), method))

    # --- cancelling (any thread) ---

    def cancel(self, mode: str | int = "all") -> None:
        """Ask the generation running on this context to stop (``sd_cancel_generation``).

        Safe from any thread while another one is inside :meth:`generate` or
        :meth:`generate_video`: it only sets an atomic flag the library reads at every sampling
        step, between the images of a batch and before decoding. Modes, as upstream's:

        - ``"all"``: stop at the next sampling step; the call raises :class:`GenerationCancelled`.
        - ``"new_latents"``: finish the image being sampled, skip the rest of the batch and
          return the finished images (``Generation.cancelled`` is then true).
        - ``"reset"``: withdraw a request the library has not acted on yet.

        A request applies to the call running now (or about to start, if it comes after that
        call began): each call starts with no request. Without a running call, or on a closed
        context, this does nothing.
        """
        from sdrest.engine.enums import parse_enum

        lib = self._native.lib
        value = parse_enum(lib, "enum sd_cancel_mode_t", mode, "mode")
        with self._cancel_lock:
            if self._ptr is None:
                return
            self._cancel_mode = None if value == lib.SD_CANCEL_RESET else value
            lib.sd_cancel_generation(self._ptr, value)

    def _start_call(self, ptr: Any) -> Callable[[], None]:
        """Forget earlier requests, and return a function that re-arms one made during this call.

        The library clears its flag when a generation starts; a request that lands between
        Python's call and that reset would be lost, so every callback of the call re-applies it.
        """
        lib = self._native.lib
        with self._cancel_lock:
            self._cancel_mode = None

        def rearm() -> None:
            mode = self._cancel_mode
            if mode is not None:
                lib.sd_cancel_generation(ptr, mode)

        return rearm

    def _cancel_checked(self, rearm: Callable[[], None], handler: Callable[..., None] | None) -> Callable[..., None]:
        def checked(*args: Any) -> None:
            rearm()
            if handler is not None:
                handler(*args)

        return checked

    # --- generation ---

    def generate(
        self,
        params: ImageGenParams,
        *,
        on_progress: ProgressHandler | None = None,
        on_preview: PreviewHandler | None = None,
        preview_mode: str | int = "proj",
        preview_interval: int = 1,
        preview_noisy: bool = False,
        on_log: Callable[[int, str], None] | None = None,
    ) -> Generation:
        """Run one ``generate_image`` call; all parameter errors are raised before it starts.
        Previews show the denoised estimate, or with ``preview_noisy`` the noisy latent."""
        params = dataclasses.replace(params, seed=resolve_seed(params.seed))
        params.validate()
        if not self.supports_image_generation:
            raise GenerationError("this model cannot generate images (it is a video model)")
        ptr = self._claim_generation()
        lib = self._native.lib
        started = time.perf_counter()
        rearm = self._start_call(ptr)
        with self._hooks.session(
            on_progress=self._cancel_checked(rearm, on_progress),
            on_preview=on_preview,
            on_log=self._cancel_checked(rearm, on_log),
            preview_mode=preview_mode,
            preview_interval=preview_interval,
            preview_noisy=preview_noisy,
        ) as capture:
            arena = Arena()
            c_params = ffi.new("sd_img_gen_params_t *")
            lib.sd_img_gen_params_init(c_params)
            params.fill(c_params, lib, arena)
            count = int(c_params.batch_count)
            results = lib.generate_image(ptr, c_params)
            images = _take_images(lib, results, count)
        cancelled = self._cancel_mode is not None
        if not images:
            if cancelled:
                raise GenerationCancelled("generation cancelled")
            raise GenerationError("generation produced no image", capture.problems() or capture.tail())
        seed = int(params.seed or 0)
        # A cut-short batch returns its first images: the seeds stay seed, seed+1, ...
        return Generation(
            images=images,
            seeds=[seed + i for i in range(len(images))],
            params=params,
            seconds=time.perf_counter() - started,
            log_tail=capture.tail(),
            warnings=capture.problems(),
            cancelled=cancelled and len(images) < count,
        )

    def txt2img(self, prompt: str, **options: Any) -> Generation:
        """Text to image. Options: see :func:`image_params`."""
        return self._generate_with(options, prompt=prompt)

    def img2img(self, image: Image.Image, prompt: str, *, strength: float = 0.75, **options: Any) -> Generation:
        """Image to image: ``strength`` 0 keeps the image, 1 replaces it."""
        return self._generate_with(options, prompt=prompt, init_image=image, strength=strength)

    def inpaint(
        self, image: Image.Image, mask: Image.Image, prompt: str, *, strength: float = 1.0, **options: Any
    ) -> Generation:
        """Repaint the white area of ``mask`` (any mode; converted to greyscale)."""
        return self._generate_with(options, prompt=prompt, init_image=image, mask_image=mask, strength=strength)

    def _generate_with(self, options: dict[str, Any], **fixed: Any) -> Generation:
        callbacks = {
            key: options.pop(key)
            for key in ("on_progress", "on_preview", "preview_mode", "preview_interval", "preview_noisy", "on_log")
            if key in options
        }
        return self.generate(image_params(**options, **fixed), **callbacks)

    def generate_video(
        self,
        params: VideoGenParams,
        *,
        on_progress: ProgressHandler | None = None,
        on_log: Callable[[int, str], None] | None = None,
    ) -> list[Image.Image]:
        """Run ``generate_video`` (video models such as Wan); returns the frames."""
        params = dataclasses.replace(params, seed=resolve_seed(params.seed))
        params.validate()
        # The library asserts (aborting the process) when asked for video from an image
        # model, so the capability is checked here first.
        if not self.supports_video_generation:
            raise GenerationError("this model cannot generate video")
        ptr = self._claim_generation()
        lib = self._native.lib
        rearm = self._start_call(ptr)
        with self._hooks.session(
            on_progress=self._cancel_checked(rearm, on_progress), on_log=self._cancel_checked(rearm, on_log)
        ) as capture:
            arena = Arena()
            c_params = ffi.new("sd_vid_gen_params_t *")
            lib.sd_vid_gen_params_init(c_params)
            params.fill(c_params, lib, arena)
            count = ffi.new("int *")
            results = lib.generate_video(ptr, c_params, count)
            frames = _take_images(lib, results, int(count[0]))
        if not frames:
            if self._cancel_mode is not None:
                raise GenerationCancelled("video generation cancelled")
            raise GenerationError("video generation produced no frames", capture.problems() or capture.tail())
        return frames


def image_params(
    *,
    base: ImageGenParams | None = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    cfg_scale: float | None = None,
    sampler: str | int | None = None,
    scheduler: str | int | None = None,
    seed: int | None = None,
    batch_count: int | None = None,
    clip_skip: int | None = None,
    strength: float | None = None,
    loras: Sequence[Lora | tuple[str | os.PathLike[str], float]] | None = None,
    init_image: Image.Image | None = None,
    mask_image: Image.Image | None = None,
    **fields: Any,
) -> ImageGenParams:
    """Build :class:`ImageGenParams` from the everyday names (``steps``, ``cfg_scale``,
    ``sampler``); any other keyword is an :class:`ImageGenParams` field."""
    params = dataclasses.replace(base) if base is not None else ImageGenParams()
    flat = {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "width": width,
        "height": height,
        "seed": seed,
        "batch_count": batch_count,
        "clip_skip": clip_skip,
        "strength": strength,
        "init_image": init_image,
        "mask_image": mask_image,
        **fields,
    }
    unknown = set(flat) - {f.name for f in dataclasses.fields(ImageGenParams)}
    if unknown:
        raise TypeError(f"unknown generation option(s): {', '.join(sorted(unknown))}")
    params = dataclasses.replace(params, **{k: v for k, v in flat.items() if v is not None})
    if loras is not None:
        params.loras = [
            lora if isinstance(lora, Lora) else Lora(path=lora[0], multiplier=float(lora[1])) for lora in loras
        ]
    sample = dataclasses.replace(params.sample_params)
    guidance = dataclasses.replace(sample.guidance)
    if steps is not None:
        sample.sample_steps = steps
    if sampler is not None:
        sample.sample_method = sampler
    if scheduler is not None:
        sample.scheduler = scheduler
    if cfg_scale is not None:
        guidance.txt_cfg = cfg_scale
    sample.guidance = guidance
    params.sample_params = sample
    return params


def _params_memory(lines: Any) -> dict[str, int] | None:
    for _level, text in reversed(lines):
        found = _PARAMS_MEMORY.search(text)
        if found:
            vram, ram = (int(float(value) * 1024 * 1024) for value in found.groups())
            return {"ram_bytes": ram, "vram_bytes": vram}
    return None


def _take_images(lib: Any, results: Any, count: int) -> list[Image.Image]:
    """Copy and free an ``sd_image_t[count]`` the library malloc'd (each buffer exactly once)."""
    if results == ffi.NULL:
        return []
    images: list[Image.Image] = []
    try:
        for index in range(count):
            if results[index].data != ffi.NULL:
                images.append(image_from_sd(results[index]))
    finally:
        for index in range(count):
            if results[index].data != ffi.NULL:
                lib.free(results[index].data)
                results[index].data = ffi.NULL
        lib.free(results)
    return images


def library_defaults(struct: str = "sd_img_gen_params_t", native: NativeLibrary | None = None) -> dict[str, Any]:
    """The library's own defaults for a parameter struct (from its ``*_init`` function)."""
    native = native or load_library()
    init = {
        "sd_ctx_params_t": "sd_ctx_params_init",
        "sd_img_gen_params_t": "sd_img_gen_params_init",
        "sd_vid_gen_params_t": "sd_vid_gen_params_init",
        "sd_sample_params_t": "sd_sample_params_init",
        "sd_cache_params_t": "sd_cache_params_init",
        "sd_hires_params_t": "sd_hires_params_init",
    }[struct]
    c_params = ffi.new(f"{struct} *")
    getattr(native.lib, init)(c_params)
    return struct_to_dict(c_params, native.lib)
