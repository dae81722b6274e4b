"""Typed parameters for every C struct of the API.

Each dataclass mirrors one struct of ``stable-diffusion.h`` field for field (same names, so
``tests/engine/test_params.py`` can prove every C field is covered). ``None`` everywhere
means "the library's default": the engine starts each struct from the library's own
``*_init`` function and writes only the fields you set. :func:`library_defaults` shows what
those defaults are.

Enum fields take the library's names (``sample_method="euler_a"``, ``scheduler="karras"``,
``wtype="q8_0"``) or integers. Image fields take Pillow images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from sdrest.engine.structs import NativeStruct

PathLike = str | os.PathLike[str]
EnumValue = str | int


@dataclass
class TilingParams(NativeStruct):
    """VAE tiling (``sd_tiling_params_t``): decode large images in tiles to save memory."""

    c_type: ClassVar[str] = "sd_tiling_params_t"
    enabled: bool | None = None
    tile_size_x: int | None = None
    tile_size_y: int | None = None
    target_overlap: float | None = None
    rel_size_x: float | None = None
    rel_size_y: float | None = None


@dataclass
class Embedding(NativeStruct):
    """A textual-inversion embedding (``sd_embedding_t``): ``name`` is the prompt token."""

    c_type: ClassVar[str] = "sd_embedding_t"
    name: str | None = None
    path: PathLike | None = None


@dataclass
class SlgParams(NativeStruct):
    """Skip-layer guidance (``sd_slg_params_t``)."""

    c_type: ClassVar[str] = "sd_slg_params_t"
    c_counts: ClassVar[dict[str, str]] = {"layers": "layer_count"}
    layers: Sequence[int] | None = None
    layer_start: float | None = None
    layer_end: float | None = None
    scale: float | None = None


@dataclass
class GuidanceParams(NativeStruct):
    """Classifier-free and distilled guidance (``sd_guidance_params_t``)."""

    c_type: ClassVar[str] = "sd_guidance_params_t"
    txt_cfg: float | None = None
    img_cfg: float | None = None
    distilled_guidance: float | None = None
    slg: SlgParams = field(default_factory=SlgParams)


@dataclass
class SampleParams(NativeStruct):
    """Sampler settings (``sd_sample_params_t``)."""

    c_type: ClassVar[str] = "sd_sample_params_t"
    c_counts: ClassVar[dict[str, str]] = {"custom_sigmas": "custom_sigmas_count"}
    guidance: GuidanceParams = field(default_factory=GuidanceParams)
    scheduler: EnumValue | None = None
    sample_method: EnumValue | None = None
    sample_steps: int | None = None
    eta: float | None = None
    shifted_timestep: int | None = None
    custom_sigmas: Sequence[float] | None = None
    flow_shift: float | None = None

    def validate(self, path: str = "sample_params") -> None:
        if self.sample_steps is not None and (not isinstance(self.sample_steps, int) or self.sample_steps < 1):
            raise ValueError(f"{path}.sample_steps: must be an integer >= 1, got {self.sample_steps!r}")
        if self.custom_sigmas is not None and any(
            not isinstance(s, (int, float)) or not math.isfinite(s) for s in self.custom_sigmas
        ):
            raise ValueError(f"{path}.custom_sigmas: must be finite numbers")


@dataclass
class PhotoMakerParams(NativeStruct):
    """PhotoMaker identity images and embedding (``sd_pm_params_t``)."""

    c_type: ClassVar[str] = "sd_pm_params_t"
    c_counts: ClassVar[dict[str, str]] = {"id_images": "id_images_count"}
    id_images: Sequence[Image.Image] | None = None
    id_embed_path: PathLike | None = None
    style_strength: float | None = None


@dataclass
class CacheParams(NativeStruct):
    """Step caching (``sd_cache_params_t``): EasyCache, UCache, DBCache, TaylorSeer, ..."""

    c_type: ClassVar[str] = "sd_cache_params_t"
    mode: EnumValue | None = None
    reuse_threshold: float | None = None
    start_percent: float | None = None
    end_percent: float | None = None
    error_decay_rate: float | None = None
    use_relative_threshold: bool | None = None
    reset_error_on_compute: bool | None = None
    Fn_compute_blocks: int | None = None  # the C field names, mixed case as they are
    Bn_compute_blocks: int | None = None
    residual_diff_threshold: float | None = None
    max_warmup_steps: int | None = None
    max_cached_steps: int | None = None
    max_continuous_cached_steps: int | None = None
    taylorseer_n_derivatives: int | None = None
    taylorseer_skip_interval: int | None = None
    scm_mask: str | None = None
    scm_policy_dynamic: bool | None = None
    spectrum_w: float | None = None
    spectrum_m: int | None = None
    spectrum_lam: float | None = None
    spectrum_window_size: int | None = None
    spectrum_flex_window: float | None = None
    spectrum_warmup_steps: int | None = None
    spectrum_stop_percent: float | None = None


@dataclass
class HiresParams(NativeStruct):
    """Hires fix (``sd_hires_params_t``): a second, upscaled denoising pass."""

    c_type: ClassVar[str] = "sd_hires_params_t"
    enabled: bool | None = None
    upscaler: EnumValue | None = None
    model_path: PathLike | None = None
    scale: float | None = None
    target_width: int | None = None
    target_height: int | None = None
    steps: int | None = None
    denoising_strength: float | None = None
    upscale_tile_size: int | None = None


@dataclass
class Lora(NativeStruct):
    """One LoRA applied to a generation (``sd_lora_t``)."""

    c_type: ClassVar[str] = "sd_lora_t"
    path: PathLike | None = None
    multiplier: float | None = 1.0
    is_high_noise: bool | None = False


@dataclass
class ContextParams(NativeStruct):
    """What a :class:`~sdrest.engine.Context` loads and how (``sd_ctx_params_t``)."""

    c_type: ClassVar[str] = "sd_ctx_params_t"
    c_counts: ClassVar[dict[str, str]] = {"embeddings": "embedding_count"}
    PATH_FIELDS: ClassVar[tuple[str, ...]] = (
        "model_path",
        "clip_l_path",
        "clip_g_path",
        "clip_vision_path",
        "t5xxl_path",
        "llm_path",
        "llm_vision_path",
        "diffusion_model_path",
        "high_noise_diffusion_model_path",
        "vae_path",
        "taesd_path",
        "control_net_path",
        "photo_maker_path",
    )

    model_path: PathLike | None = None
    clip_l_path: PathLike | None = None
    clip_g_path: PathLike | None = None
    clip_vision_path: PathLike | None = None
    t5xxl_path: PathLike | None = None
    llm_path: PathLike | None = None
    llm_vision_path: PathLike | None = None
    diffusion_model_path: PathLike | None = None
    high_noise_diffusion_model_path: PathLike | None = None
    vae_path: PathLike | None = None
    taesd_path: PathLike | None = None
    control_net_path: PathLike | None = None
    embeddings: Sequence[Embedding] | None = None
    photo_maker_path: PathLike | None = None
    tensor_type_rules: str | None = None
    vae_decode_only: bool | None = None
    # The library's default (true) frees the weights after the first generation, after
    # which a second one crashes the process; a Context is for many generations.
    free_params_immediately: bool | None = False
    n_threads: int | None = None
    wtype: EnumValue | None = None
    rng_type: EnumValue | None = None
    sampler_rng_type: EnumValue | None = None
    prediction: EnumValue | None = None
    # The library's "auto" merges LoRAs into the weights and subtracts them afterwards, which
    # leaves f16 rounding drift: the same seed then stops giving the same image. "at_runtime"
    # leaves the weights untouched, so a long-lived Context stays reproducible.
    lora_apply_mode: EnumValue | None = "at_runtime"
    offload_params_to_cpu: bool | None = None
    enable_mmap: bool | None = None
    keep_clip_on_cpu: bool | None = None
    keep_control_net_on_cpu: bool | None = None
    keep_vae_on_cpu: bool | None = None
    flash_attn: bool | None = None
    diffusion_flash_attn: bool | None = None
    tae_preview_only: bool | None = None
    diffusion_conv_direct: bool | None = None
    vae_conv_direct: bool | None = None
    circular_x: bool | None = None
    circular_y: bool | None = None
    force_sdxl_vae_conv_scale: bool | None = None
    chroma_use_dit_mask: bool | None = None
    chroma_use_t5_mask: bool | None = None
    chroma_t5_mask_pad: int | None = None
    qwen_image_zero_cond_t: bool | None = None
    max_vram: float | None = None

    def validate(self) -> None:
        """Raise ``ValueError``/``FileNotFoundError`` for what the library would choke on."""
        if self.model_path is None and self.diffusion_model_path is None:
            raise ValueError("model_path: a model_path or diffusion_model_path is required")
        for name in self.PATH_FIELDS:
            _require_file(name, getattr(self, name))
        for index, embedding in enumerate(self.embeddings or ()):
            if not embedding.name:
                raise ValueError(f"embeddings[{index}].name: required")
            _require_file(f"embeddings[{index}].path", embedding.path)
        if self.n_threads is not None and (not isinstance(self.n_threads, int) or self.n_threads == 0):
            raise ValueError(f"n_threads: must be a non-zero integer (-1 = all physical cores), got {self.n_threads!r}")


@dataclass
class ImageGenParams(NativeStruct):
    """One image generation request (``sd_img_gen_params_t``).

    txt2img leaves ``init_image`` unset; img2img sets it (and ``strength``); inpainting adds
    ``mask_image`` (white = repaint). Images are resized by the library to ``width`` x
    ``height`` when they differ.
    """

    c_type: ClassVar[str] = "sd_img_gen_params_t"
    c_counts: ClassVar[dict[str, str]] = {"loras": "lora_count", "ref_images": "ref_images_count"}
    c_image_modes: ClassVar[dict[str, str]] = {"mask_image": "L"}

    loras: Sequence[Lora] | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    clip_skip: int | None = None
    init_image: Image.Image | None = None
    ref_images: Sequence[Image.Image] | None = None
    auto_resize_ref_image: bool | None = None
    increase_ref_index: bool | None = None
    mask_image: Image.Image | None = None
    width: int | None = None
    height: int | None = None
    sample_params: SampleParams = field(default_factory=SampleParams)
    strength: float | None = None
    seed: int | None = None
    batch_count: int | None = None
    control_image: Image.Image | None = None
    control_strength: float | None = None
    pm_params: PhotoMakerParams = field(default_factory=PhotoMakerParams)
    vae_tiling_params: TilingParams = field(default_factory=TilingParams)
    cache: CacheParams = field(default_factory=CacheParams)
    hires: HiresParams = field(default_factory=HiresParams)

    def validate(self) -> None:
        """Raise ``ValueError``/``FileNotFoundError`` before any native code runs."""
        _validate_common(self)
        if self.mask_image is not None and self.init_image is None:
            raise ValueError("mask_image: inpainting needs an init_image too")
        if self.batch_count is not None and (not _is_int(self.batch_count) or self.batch_count < 1):
            raise ValueError(f"batch_count: must be an integer >= 1, got {self.batch_count!r}")
        for index, lora in enumerate(self.loras or ()):
            _require_file(f"loras[{index}].path", lora.path, required=True)
        _require_file("hires.model_path", self.hires.model_path)
        _require_file("pm_params.id_embed_path", self.pm_params.id_embed_path)


@dataclass
class VideoGenParams(NativeStruct):
    """One video generation request (``sd_vid_gen_params_t``), e.g. for Wan models."""

    c_type: ClassVar[str] = "sd_vid_gen_params_t"
    c_counts: ClassVar[dict[str, str]] = {"loras": "lora_count", "control_frames": "control_frames_size"}

    loras: Sequence[Lora] | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    clip_skip: int | None = None
    init_image: Image.Image | None = None
    end_image: Image.Image | None = None
    control_frames: Sequence[Image.Image] | None = None
    width: int | None = None
    height: int | None = None
    sample_params: SampleParams = field(default_factory=SampleParams)
    high_noise_sample_params: SampleParams = field(default_factory=SampleParams)
    moe_boundary: float | None = None
    strength: float | None = None
    seed: int | None = None
    video_frames: int | None = None
    vace_strength: float | None = None
    vae_tiling_params: TilingParams = field(default_factory=TilingParams)
    cache: CacheParams = field(default_factory=CacheParams)

    def validate(self) -> None:
        _validate_common(self)
        self.high_noise_sample_params.validate("high_noise_sample_params")
        if self.video_frames is not None and (not _is_int(self.video_frames) or self.video_frames < 1):
            raise ValueError(f"video_frames: must be an integer >= 1, got {self.video_frames!r}")
        for index, lora in enumerate(self.loras or ()):
            _require_file(f"loras[{index}].path", lora.path, required=True)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_common(params: ImageGenParams | VideoGenParams) -> None:
    if params.prompt is not None and not isinstance(params.prompt, str):
        raise ValueError("prompt: must be a string")
    for name in ("width", "height"):
        value = getattr(params, name)
        if value is None:
            continue
        if not _is_int(value) or value < 8 or value % 8:
            raise ValueError(f"{name}: must be a positive multiple of 8, got {value!r}")
    if params.strength is not None and not (
        isinstance(params.strength, (int, float)) and 0.0 <= params.strength <= 1.0
    ):
        raise ValueError(f"strength: must be between 0 and 1, got {params.strength!r}")
    if params.seed is not None and (not _is_int(params.seed) or not -(2**63) <= params.seed < 2**63):
        raise ValueError(f"seed: must be a 64-bit integer, got {params.seed!r}")
    params.sample_params.validate()


def _require_file(name: str, value: PathLike | None, required: bool = False) -> None:
    if value is None:
        if required:
            raise ValueError(f"{name}: required")
        return
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name}: expected a path, got {type(value).__name__}")
    if not Path(value).is_file():
        raise FileNotFoundError(f"{name}: no such file: {os.fspath(value)}")
