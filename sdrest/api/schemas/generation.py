"""Request bodies of generation, upscale and model load/unload jobs.

One model per mode: ``Txt2ImgRequest`` has no ``init_image``/``strength``, ``Img2ImgRequest``
needs an ``init_image``, ``InpaintRequest`` a ``mask_image`` too. ``GenerationRequest`` (for
``POST /generate``, which picks the mode from the fields) has them all. A field of another
mode is a ``400 field_not_allowed`` (:func:`fields_of_other_modes`), not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field

from sdrest.api.schemas.base import RequestModel, alias_names
from sdrest.api.schemas.fields import Capability, ImageInput, ImageList, ModelFile, capability_text

#: Components a request may name: request field -> (engine ContextParams field, model type folder).
MODEL_COMPONENTS = {
    "vae": ("vae_path", "vae"),
    "taesd": ("taesd_path", "taesd"),
    "clip_l": ("clip_l_path", "text_encoder"),
    "clip_g": ("clip_g_path", "text_encoder"),
    "t5xxl": ("t5xxl_path", "text_encoder"),
    "llm": ("llm_path", "text_encoder"),
    "diffusion_model": ("diffusion_model_path", "diffusion_model"),
    "controlnet": ("control_net_path", "controlnet"),
    "clip_vision": ("clip_vision_path", "text_encoder"),
    "llm_vision": ("llm_vision_path", "text_encoder"),
    # PhotoMaker is a conditioning adapter like a ControlNet: it lives in that folder.
    "photo_maker": ("photo_maker_path", "controlnet"),
}
#: Load options: request field -> engine ContextParams field (a tuple sets several).
#: (Generation fields -> ImageGenParams fields: IMAGE_FIELDS, in sdrest.jobs.engine_fields so the
#: worker, which knows nothing of the API, applies the same table.)
MODEL_OPTIONS: dict[str, str | tuple[str, ...]] = {
    "weight_type": "wtype",
    "flash_attn": "flash_attn",
    "offload_to_cpu": "offload_params_to_cpu",
    "keep_vae_on_cpu": "keep_vae_on_cpu",
    "keep_clip_on_cpu": "keep_clip_on_cpu",
    "keep_controlnet_on_cpu": "keep_control_net_on_cpu",
    "vae_conv_direct": "vae_conv_direct",
    "diffusion_conv_direct": "diffusion_conv_direct",
    "diffusion_flash_attn": "diffusion_flash_attn",
    "rng": "rng_type",
    "sampler_rng": "sampler_rng_type",
    "prediction": "prediction",
    "lora_apply_mode": "lora_apply_mode",
    "mmap": "enable_mmap",
    "max_vram": "max_vram",
    "tensor_type_rules": "tensor_type_rules",
    "taesd_preview_only": "tae_preview_only",
    "circular": ("circular_x", "circular_y"),
    "circular_x": "circular_x",
    "circular_y": "circular_y",
    "force_sdxl_vae_conv_scale": "force_sdxl_vae_conv_scale",
    "chroma_use_dit_mask": "chroma_use_dit_mask",
    "chroma_use_t5_mask": "chroma_use_t5_mask",
    "chroma_t5_mask_pad": "chroma_t5_mask_pad",
    "qwen_image_zero_cond_t": "qwen_image_zero_cond_t",
}

#: Fields that steer the request, not the generation (kept out of job parameters).
CONTROL_FIELDS = ("wait", "base64", "priority", "preset", "prompt_template", "negative_prompt_template")

Sampler = Annotated[
    str,
    Capability("samplers"),
    Field(max_length=128, description=capability_text("samplers", "Sampling method; default: the model's.")),
]
Scheduler = Annotated[
    str,
    Capability("schedulers"),
    Field(max_length=128, description=capability_text("schedulers", "Sigma schedule; default: the model's.")),
]
HiresUpscaler = Annotated[
    str,
    Capability("hires_upscalers"),
    Field(max_length=128, description=capability_text("hires_upscalers", "How the first pass is enlarged.")),
]
WeightType = Annotated[
    str,
    Capability("weight_types"),
    Field(max_length=128, description=capability_text("weight_types", "Convert weights on load (e.g. q8_0, f16).")),
]
Priority = Annotated[int, Field(ge=-100, le=100, description="Higher runs first; equal priorities run in order.")]
Size = Annotated[int, Field(ge=64, le=4096, multiple_of=8)]
#: A custom sigma schedule: one value per step and a final one, so at most the 150 steps `steps` allows.
MAX_SIGMAS = 151
#: ``regex=type`` pairs, comma-separated (sd-cli --tensor-type-rules).
_TENSOR_RULES = r"^[^=,]+=[A-Za-z0-9_]+(,[^=,]+=[A-Za-z0-9_]+)*$"


class LoraRequest(RequestModel):
    name: ModelFile = Field(description="LoRA file name under the lora folder (extension optional).")
    weight: float | None = Field(None, ge=-10, le=10, description="Strength (default 1).")


class HiresRequest(RequestModel):
    """Hires fix: a second, enlarged pass."""

    upscaler: HiresUpscaler | None = None
    scale: float | None = Field(
        None, ge=1, le=4, description="Enlargement factor (ignored when width/height are given)."
    )
    width: int | None = Field(None, ge=64, le=8192, multiple_of=8, description="Target width.")
    height: int | None = Field(None, ge=64, le=8192, multiple_of=8, description="Target height.")
    steps: int | None = Field(None, ge=0, le=150, description="Second-pass steps (0: same as steps).")
    denoising_strength: float | None = Field(None, ge=0, le=1, description="Second-pass denoising strength.")
    model: ModelFile | None = Field(
        None,
        description="ESRGAN model (esrgan or upscaler folder) that enlarges the first pass; implies upscaler "
        "`Model` (sd-cli --hires-upscaler with --hires-upscalers-dir).",
    )
    upscale_tile_size: int | None = Field(
        None, ge=16, le=1024, description="Tile size of the model upscaler (default 128)."
    )


class TilingRequest(RequestModel):
    """Decode in tiles to save memory."""

    tile_size: int | None = Field(None, ge=8, le=1024, description="Tile size in latent pixels (x and y).")
    tile_size_x: int | None = Field(None, ge=8, le=1024, description="Tile width in latent pixels.")
    tile_size_y: int | None = Field(None, ge=8, le=1024, description="Tile height in latent pixels.")
    rel_size_x: float | None = Field(
        None,
        gt=0,
        le=64,
        description="Tile width relative to the latent: "
        "<= 1 a fraction of it, > 1 the number of tiles (sd-cli "
        "--vae-relative-tile-size).",
    )
    rel_size_y: float | None = Field(None, gt=0, le=64, description="Tile height relative to the latent.")
    overlap: float | None = Field(None, ge=0, le=0.95, description="Tile overlap fraction.")


def _sd_cli_cache_mode(value: Any) -> Any:
    return "cache_dit" if value == "cache-dit" else value  # sd-cli's spelling


class CacheRequest(RequestModel):
    """Step caching: reuse model outputs between similar steps to sample faster (sd-cli --cache-mode,
    --cache-option). Unset options keep the library's defaults for the mode."""

    mode: Annotated[
        Literal["disabled", "easycache", "ucache", "dbcache", "taylorseer", "cache_dit", "spectrum"],
        BeforeValidator(_sd_cli_cache_mode),
    ] = Field(
        description="easycache: DiT models; ucache: UNet models; dbcache, taylorseer, cache_dit: DiT "
        "block-level; spectrum: UNet and DiT (sd-cli's cache-dit is cache_dit)."
    )
    reuse_threshold: float | None = Field(
        None, ge=0, le=10, description="easycache/ucache: how similar steps must be to reuse one."
    )
    start_percent: float | None = Field(None, ge=0, le=1, description="Caching starts at this fraction of the steps.")
    end_percent: float | None = Field(None, ge=0, le=1, description="Caching ends at this fraction.")
    error_decay_rate: float | None = Field(None, ge=0, le=1, description="ucache: error decay rate.")
    use_relative_threshold: bool | None = Field(None, description="ucache: threshold relative to the output.")
    reset_error_on_compute: bool | None = Field(None, description="ucache: reset the error after a computed step.")
    fn_compute_blocks: int | None = Field(
        None, ge=0, le=1000, description="dbcache: front blocks always computed (Fn)."
    )
    bn_compute_blocks: int | None = Field(None, ge=0, le=1000, description="dbcache: back blocks always computed (Bn).")
    residual_diff_threshold: float | None = Field(
        None, ge=0, le=10, description="dbcache: residual difference threshold."
    )
    max_warmup_steps: int | None = Field(None, ge=0, le=1000, description="Steps always computed first.")
    max_cached_steps: int | None = Field(
        None, ge=-1, le=1000, description="At most this many cached steps (-1: no limit)."
    )
    max_continuous_cached_steps: int | None = Field(
        None, ge=-1, le=1000, description="At most this many cached steps in a row (-1: no limit)."
    )
    taylorseer_n_derivatives: int | None = Field(None, ge=0, le=8, description="taylorseer: derivative order.")
    taylorseer_skip_interval: int | None = Field(None, ge=1, le=100, description="taylorseer: skip interval.")
    scm_mask: str | None = Field(
        None,
        max_length=1000,
        pattern=r"^[01](,?[01])*$",
        description="cache_dit: step computation mask, 1 = compute, 0 = may cache (sd-cli --scm-mask).",
    )
    scm_policy_dynamic: bool | None = Field(
        None, description="cache_dit: dynamic (true) or static mask policy (sd-cli --scm-policy)."
    )
    spectrum_w: float | None = Field(None, ge=0, le=10, description="spectrum: w.")
    spectrum_m: int | None = Field(None, ge=1, le=64, description="spectrum: m.")
    spectrum_lam: float | None = Field(None, ge=0, le=100, description="spectrum: lambda.")
    spectrum_window_size: int | None = Field(None, ge=1, le=100, description="spectrum: window size.")
    spectrum_flex_window: float | None = Field(None, ge=0, le=10, description="spectrum: flexible window.")
    spectrum_warmup_steps: int | None = Field(None, ge=0, le=1000, description="spectrum: warm-up steps.")
    spectrum_stop_percent: float | None = Field(
        None, ge=0, le=1, description="spectrum: stops at this fraction of the steps."
    )


class SlgRequest(RequestModel):
    """Skip-layer guidance (SD3/Wan)."""

    layers: list[Annotated[int, Field(ge=0, le=1000)]] | None = Field(
        None, max_length=64, description="Layers to skip."
    )
    start: float | None = Field(None, ge=0, le=1, description="Start, as a fraction of the steps.")
    end: float | None = Field(None, ge=0, le=1, description="End, as a fraction of the steps.")
    scale: float | None = Field(None, ge=0, le=100, description="Skip-layer guidance scale.")


class ModelChoice(RequestModel):
    """The checkpoint, components and load options a job uses (what the worker loads)."""

    model: ModelFile | None = Field(
        None, description="Checkpoint name under the checkpoints folder; default: the loaded model."
    )
    vae: ModelFile | None = Field(None, description="VAE file name (vae folder).")
    taesd: ModelFile | None = Field(None, description="TAESD file name (taesd folder).")
    clip_l: ModelFile | None = Field(None, description="CLIP-L text encoder (text_encoders folder).")
    clip_g: ModelFile | None = Field(None, description="CLIP-G text encoder (text_encoders folder).")
    t5xxl: ModelFile | None = Field(None, description="T5-XXL text encoder (text_encoders folder).")
    llm: ModelFile | None = Field(None, description="LLM text encoder (text_encoders folder).")
    diffusion_model: ModelFile | None = Field(
        None, description="Diffusion model alone (diffusion_models folder), instead of a checkpoint."
    )
    controlnet: ModelFile | None = Field(None, description="ControlNet (controlnet folder).")
    clip_vision: ModelFile | None = Field(
        None, description="CLIP vision encoder (text_encoders folder), for image-conditioned models."
    )
    llm_vision: ModelFile | None = Field(
        None, description="Vision part of an LLM text encoder such as Qwen2.5-VL (text_encoders folder)."
    )
    photo_maker: ModelFile | None = Field(
        None, description="PhotoMaker model (controlnet folder); used with pm_id_images or pm_id_embed."
    )
    weight_type: WeightType | None = None
    flash_attn: bool | None = Field(None, description="Use flash attention.")
    offload_to_cpu: bool | None = Field(None, description="Keep weights in RAM and move them to the GPU when needed.")
    keep_vae_on_cpu: bool | None = Field(None, description="Run the VAE on the CPU.")
    keep_clip_on_cpu: bool | None = Field(None, description="Run the text encoders on the CPU.")
    keep_controlnet_on_cpu: bool | None = Field(None, description="Run the ControlNet on the CPU.")
    vae_conv_direct: bool | None = Field(None, description="Direct convolutions in the VAE.")
    diffusion_conv_direct: bool | None = Field(None, description="Direct convolutions in the diffusion model.")
    diffusion_flash_attn: bool | None = Field(None, description="Flash attention in the diffusion model only.")
    rng: Literal["std_default", "cuda", "cpu"] | None = Field(
        None, description="Random number generator of the initial noise (library default: cuda)."
    )
    sampler_rng: Literal["std_default", "cuda", "cpu"] | None = Field(
        None, description="Generator of the sampler's noise (default: as rng)."
    )
    prediction: Literal["eps", "v", "edm_v", "sd3_flow", "flux_flow", "flux2_flow"] | None = Field(
        None, description="Override the model's prediction type."
    )
    lora_apply_mode: Literal["auto", "immediately", "at_runtime"] | None = Field(
        None,
        description="How LoRAs are applied (default here: at_runtime, so the same seed keeps giving the same image).",
    )
    mmap: bool | None = Field(None, description="Memory-map the model file.")
    max_vram: float | None = Field(
        None,
        ge=0,
        le=65536,
        description="VRAM budget in GiB: the graph is cut into segments that fit (0: no splitting).",
    )
    tensor_type_rules: str | None = Field(
        None,
        max_length=2000,
        pattern=_TENSOR_RULES,
        description="Weight types by tensor name on load, `regex=type,...` (e.g. `^vae\\.=f16`).",
    )
    taesd_preview_only: bool | None = Field(
        None, description="Use the TAESD only for previews, not for the final decode."
    )
    circular: bool | None = Field(None, description="Seamless tiling in both directions (circular_x and circular_y).")
    circular_x: bool | None = Field(None, description="Seamless tiling left-right.")
    circular_y: bool | None = Field(None, description="Seamless tiling top-bottom.")
    force_sdxl_vae_conv_scale: bool | None = Field(
        None, description="Force the SDXL VAE's conv scale (for some fine-tuned SDXL VAEs)."
    )
    chroma_use_dit_mask: bool | None = Field(
        None, description="Chroma: use the DiT mask (sd-cli --chroma-disable-dit-mask = false)."
    )
    chroma_use_t5_mask: bool | None = Field(None, description="Chroma: use the T5 mask.")
    chroma_t5_mask_pad: int | None = Field(None, ge=0, le=1024, description="Chroma: T5 mask padding.")
    qwen_image_zero_cond_t: bool | None = Field(None, description="Qwen-Image: zero conditioning timestep.")


class JobOutput(RequestModel):
    """How an image job's results are written and answered."""

    output_format: Literal["png", "jpeg", "webp"] | None = Field(None, description="Image file format.")
    output_quality: int | None = Field(None, ge=1, le=100, description="JPEG/WebP quality.")
    priority: Priority | None = None
    wait: bool | None = Field(
        None,
        description="Answer only when the job has finished (also ?wait=). Default: "
        "true on POST /generate (false, or Prefer: respond-async: 202 at "
        "once), false on the mode routes and /upscale.",
    )
    base64: bool | None = Field(None, description="Include each image as base64 in the answer (default: when waiting).")


class Txt2ImgRequest(ModelChoice, JobOutput):
    """A text-to-image job."""

    prompt: str | None = Field(
        None,
        max_length=20000,
        description="What to draw; <lora:name:weight> tags apply LoRAs. Required (here or from the preset).",
        examples=["a lighthouse on a cliff at dusk"],
    )
    negative_prompt: str | None = Field(None, max_length=20000, description="What to avoid.")
    preset: ModelFile | None = Field(
        None, description="Start from this preset (presets folder); the request's own fields win."
    )
    prompt_template: ModelFile | None = Field(
        None, description="Prompt template (prompts folder); {prompt} is replaced."
    )
    negative_prompt_template: ModelFile | None = Field(
        None, description="Negative prompt template (neg_prompts folder)."
    )
    width: Size | None = Field(None, description="Image width (img2img default: the input image's).", examples=[512])
    height: Size | None = Field(None, description="Image height.", examples=[512])
    steps: int | None = Field(None, ge=1, le=150, description="Sampling steps.", examples=[20])
    cfg_scale: float | None = Field(None, ge=0, le=50, description="Classifier-free guidance scale.", examples=[7])
    guidance: float | None = Field(None, ge=0, le=100, description="Distilled guidance (Flux and similar).")
    img_cfg_scale: float | None = Field(
        None, ge=0, le=50, description="Image guidance scale (instruct-pix2pix style models)."
    )
    sampler: Sampler | None = Field(None, validation_alias=AliasChoices("sampler", "sampler_name", "sample_method"))
    scheduler: Scheduler | None = None
    seed: int | None = Field(
        None, ge=-1, le=2**63 - 1, description="Seed; -1 picks a random one (the real seed is reported).", examples=[-1]
    )
    batch_count: int | None = Field(
        None,
        ge=1,
        le=16,
        validation_alias=AliasChoices("batch_count", "batch_size"),
        description="Number of images; image i uses seed + i.",
    )
    clip_skip: int | None = Field(None, ge=-1, le=12, description="CLIP layers to skip (-1: the model's default).")
    eta: float | None = Field(None, ge=0, le=10, description="Noise multiplier of ancestral/DDIM samplers.")
    flow_shift: float | None = Field(None, ge=0, le=100, description="Shift of flow-matching schedules.")
    loras: list[LoraRequest] | None = Field(None, max_length=16, description="LoRAs to apply.")
    control_image: ImageInput | None = Field(None, description="ControlNet condition image.")
    control_strength: float | None = Field(None, ge=0, le=10, description="ControlNet strength.")
    ref_images: ImageList | None = Field(
        None, max_length=8, description="Reference images (edit models such as Flux Kontext)."
    )
    hires: HiresRequest | None = None
    vae_tiling: TilingRequest | None = None
    slg: SlgRequest | None = None
    timestep_shift: int | None = Field(
        None, ge=0, le=1000, description="Shifted timestep (NitroFusion-style models; 0: off)."
    )
    sigmas: list[Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)]] | None = Field(
        None,
        min_length=2,
        max_length=MAX_SIGMAS,
        description="Custom sigma schedule, one per step plus a final one (overrides scheduler and steps; "
        "at most 150 steps, as steps).",
    )
    cache: CacheRequest | None = None
    canny: bool | None = Field(
        None, description="Turn control_image into a Canny edge map first (the library's preprocessor)."
    )
    auto_resize_ref_image: bool | None = Field(
        None,
        description="Resize ref_images to the output size "
        "(default true, as sd-cli; false: "
        "--disable-auto-resize-ref-image).",
    )
    increase_ref_index: bool | None = Field(
        None, description="Give each ref image its own index (RoPE) instead of the same one."
    )
    pm_id_images: ImageList | None = Field(
        None, max_length=8, description="PhotoMaker: images of the person (with the photo_maker model)."
    )
    pm_id_embed: ModelFile | None = Field(None, description="PhotoMaker v2 id embedding file (controlnet folder).")
    pm_style_strength: float | None = Field(
        None, ge=0, le=100, description="PhotoMaker style strength (library default 20)."
    )
    upscale_model: ModelFile | None = Field(
        None, description="Upscale each image afterwards with this ESRGAN model (esrgan or upscaler folder)."
    )
    upscale_repeats: int | None = Field(None, ge=1, le=4, description="Run the upscaler this many times (default 1).")
    upscale_tile_size: int | None = Field(None, ge=16, le=1024, description="Upscaler tile size (default 128).")
    image_metadata: bool | None = Field(
        None,
        description="Embed the parameters in the image files (default true; false: sd-cli --disable-image-metadata).",
    )
    preview_noisy: bool | None = Field(
        None,
        description="Previews show the noisy latent instead of the denoised estimate (with the server's --preview).",
    )


_STRENGTH = Field(
    None,
    ge=0,
    le=1,
    validation_alias=AliasChoices("strength", "denoising_strength"),
    description="How much the image changes (0..1).",
)


class Img2ImgRequest(Txt2ImgRequest):
    """An image-to-image job."""

    init_image: ImageInput = Field(description="The image to start from.")
    strength: float | None = _STRENGTH


class InpaintRequest(Img2ImgRequest):
    """An inpainting job."""

    mask_image: ImageInput = Field(description="Inpainting mask: white is repainted.")


class GenerationRequest(Txt2ImgRequest):
    """Any generation: a mask_image means inpainting, an init_image img2img, else text to image."""

    init_image: ImageInput | None = Field(None, description="The image to start from (img2img, inpainting).")
    mask_image: ImageInput | None = Field(None, description="Inpainting mask: white is repainted.")
    strength: float | None = _STRENGTH


MODE_REQUESTS: dict[str, type[Txt2ImgRequest]] = {
    "txt2img": Txt2ImgRequest,
    "img2img": Img2ImgRequest,
    "inpaint": InpaintRequest,
}


def fields_of_other_modes(data: Mapping[str, Any], mode: str) -> list[str]:
    """Keys of ``data`` that are generation fields, but not of ``mode`` (``strength`` in txt2img)."""
    own = {alias for name, f in MODE_REQUESTS[mode].model_fields.items() for alias in alias_names(name, f)}
    every = {alias for name, f in GenerationRequest.model_fields.items() for alias in alias_names(name, f)}
    return sorted(key for key in data if key in every and key not in own)


class UpscaleRequest(JobOutput):
    """An ESRGAN upscale job."""

    image: ImageInput = Field(description="The image to upscale.")
    upscaler: ModelFile = Field(description="ESRGAN model name under the esrgan (or upscaler) folder.")
    factor: int | None = Field(None, ge=1, le=8, description="Upscale factor (default: the model's).")


class LoadRequest(ModelChoice):
    """Load a checkpoint (or a diffusion model) with components and options."""

    priority: Priority | None = None
    wait: bool | None = Field(None, description="Answer only when the model is loaded.")


class UnloadRequest(RequestModel):
    """Unload the model."""

    priority: Priority | None = None
    wait: bool | None = Field(None, description="Answer only when the model is unloaded.")
