"""Request bodies of generation, upscale and model load/unload jobs.

One model per mode: ``Txt2ImgRequest`` has no ``init_image``/``strength``, ``Img2ImgRequest``
needs an ``init_image``, ``InpaintRequest`` a ``mask_image`` too. ``GenerationRequest`` (for
``POST /generate``, which picks the mode from the fields) has them all. A field of another
mode is a ``400 field_not_allowed`` (:func:`fields_of_other_modes`), not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field

from sdrest.api.schemas.base import RequestModel, alias_names
from sdrest.api.schemas.fields import Capability, ImageInput, ImageList, Name

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
}
#: Load options: request field -> engine ContextParams field.
MODEL_OPTIONS = {
    "weight_type": "wtype",
    "flash_attn": "flash_attn",
    "offload_to_cpu": "offload_params_to_cpu",
    "keep_vae_on_cpu": "keep_vae_on_cpu",
    "keep_clip_on_cpu": "keep_clip_on_cpu",
    "keep_controlnet_on_cpu": "keep_control_net_on_cpu",
    "vae_conv_direct": "vae_conv_direct",
    "diffusion_conv_direct": "diffusion_conv_direct",
}
#: Fields that steer the request, not the generation (kept out of job parameters).
CONTROL_FIELDS = ("wait", "base64", "priority", "preset", "prompt_template", "negative_prompt_template")

Sampler = Capability("samplers", "Sampling method; default: the model's.")
Scheduler = Capability("schedulers", "Sigma schedule; default: the model's.")
HiresUpscaler = Capability("hires_upscalers", "How the first pass is enlarged.")
WeightType = Capability("weight_types", "Convert weights on load (e.g. q8_0, f16).")
Priority = Annotated[int, Field(ge=-100, le=100, description="Higher runs first; equal priorities run in order.")]
Size = Annotated[int, Field(ge=64, le=4096, multiple_of=8)]


class LoraRequest(RequestModel):
    name: Name("LoRA file name under the lora folder (extension optional).")
    weight: float | None = Field(None, ge=-10, le=10, description="Strength (default 1).")


class HiresRequest(RequestModel):
    """Hires fix: a second, enlarged pass."""

    upscaler: HiresUpscaler | None = None
    scale: float | None = Field(None, ge=1, le=4, description="Enlargement factor (ignored when width/height "
                                                                "are given).")
    width: int | None = Field(None, ge=64, le=8192, multiple_of=8, description="Target width.")
    height: int | None = Field(None, ge=64, le=8192, multiple_of=8, description="Target height.")
    steps: int | None = Field(None, ge=0, le=150, description="Second-pass steps (0: same as steps).")
    denoising_strength: float | None = Field(None, ge=0, le=1, description="Second-pass denoising strength.")


class TilingRequest(RequestModel):
    """Decode in tiles to save memory."""

    tile_size: int | None = Field(None, ge=8, le=1024, description="Tile size in latent pixels.")
    overlap: float | None = Field(None, ge=0, le=0.95, description="Tile overlap fraction.")


class SlgRequest(RequestModel):
    """Skip-layer guidance (SD3/Wan)."""

    layers: list[Annotated[int, Field(ge=0, le=1000)]] | None = Field(None, max_length=64,
                                                                       description="Layers to skip.")
    start: float | None = Field(None, ge=0, le=1, description="Start, as a fraction of the steps.")
    end: float | None = Field(None, ge=0, le=1, description="End, as a fraction of the steps.")
    scale: float | None = Field(None, ge=0, le=100, description="Skip-layer guidance scale.")


class ModelChoice(RequestModel):
    """The checkpoint, components and load options a job uses (what the worker loads)."""

    model: Name("Checkpoint name under the checkpoints folder; default: the loaded model.") | None = None
    vae: Name("VAE file name (vae folder).") | None = None
    taesd: Name("TAESD file name (taesd folder).") | None = None
    clip_l: Name("CLIP-L text encoder (text_encoders folder).") | None = None
    clip_g: Name("CLIP-G text encoder (text_encoders folder).") | None = None
    t5xxl: Name("T5-XXL text encoder (text_encoders folder).") | None = None
    llm: Name("LLM text encoder (text_encoders folder).") | None = None
    diffusion_model: Name("Diffusion model alone (diffusion_models folder), instead of a checkpoint.") | None = None
    controlnet: Name("ControlNet (controlnet folder).") | None = None
    weight_type: WeightType | None = None
    flash_attn: bool | None = Field(None, description="Use flash attention.")
    offload_to_cpu: bool | None = Field(None, description="Keep weights in RAM and move them to the GPU "
                                                          "when needed.")
    keep_vae_on_cpu: bool | None = Field(None, description="Run the VAE on the CPU.")
    keep_clip_on_cpu: bool | None = Field(None, description="Run the text encoders on the CPU.")
    keep_controlnet_on_cpu: bool | None = Field(None, description="Run the ControlNet on the CPU.")
    vae_conv_direct: bool | None = Field(None, description="Direct convolutions in the VAE.")
    diffusion_conv_direct: bool | None = Field(None, description="Direct convolutions in the diffusion model.")


class JobOutput(RequestModel):
    """How an image job's results are written and answered."""

    output_format: Literal["png", "jpeg", "webp"] | None = Field(None, description="Image file format.")
    output_quality: int | None = Field(None, ge=1, le=100, description="JPEG/WebP quality.")
    priority: Priority | None = None
    wait: bool | None = Field(None, description="Answer only when the job has finished (also ?wait=). Default: "
                                                "true on POST /generate (false, or Prefer: respond-async: 202 at "
                                                "once), false on the mode routes and /upscale.")
    base64: bool | None = Field(None, description="Include each image as base64 in the answer "
                                                  "(default: when waiting).")


class Txt2ImgRequest(ModelChoice, JobOutput):
    """A text-to-image job."""

    prompt: str | None = Field(None, max_length=20000, description="What to draw; <lora:name:weight> tags "
                               "apply LoRAs. Required (here or from the preset).",
                               examples=["a lighthouse on a cliff at dusk"])
    negative_prompt: str | None = Field(None, max_length=20000, description="What to avoid.")
    preset: Name("Start from this preset (presets folder); the request's own fields win.") | None = None
    prompt_template: Name("Prompt template (prompts folder); {prompt} is replaced.") | None = None
    negative_prompt_template: Name("Negative prompt template (neg_prompts folder).") | None = None
    width: Size | None = Field(None, description="Image width (img2img default: the input image's).",
                               examples=[512])
    height: Size | None = Field(None, description="Image height.", examples=[512])
    steps: int | None = Field(None, ge=1, le=150, description="Sampling steps.", examples=[20])
    cfg_scale: float | None = Field(None, ge=0, le=50, description="Classifier-free guidance scale.", examples=[7])
    guidance: float | None = Field(None, ge=0, le=100, description="Distilled guidance (Flux and similar).")
    img_cfg_scale: float | None = Field(None, ge=0, le=50, description="Image guidance scale (instruct-pix2pix "
                                                                        "style models).")
    sampler: Sampler | None = Field(None, validation_alias=AliasChoices("sampler", "sampler_name", "sample_method"))
    scheduler: Scheduler | None = None
    seed: int | None = Field(None, ge=-1, le=2**63 - 1, description="Seed; -1 picks a random one (the real seed "
                                                                    "is reported).", examples=[-1])
    batch_count: int | None = Field(None, ge=1, le=16, validation_alias=AliasChoices("batch_count", "batch_size"),
                                    description="Number of images; image i uses seed + i.")
    clip_skip: int | None = Field(None, ge=-1, le=12, description="CLIP layers to skip (-1: the model's default).")
    eta: float | None = Field(None, ge=0, le=10, description="Noise multiplier of ancestral/DDIM samplers.")
    flow_shift: float | None = Field(None, ge=0, le=100, description="Shift of flow-matching schedules.")
    loras: list[LoraRequest] | None = Field(None, max_length=16, description="LoRAs to apply.")
    control_image: ImageInput | None = Field(None, description="ControlNet condition image.")
    control_strength: float | None = Field(None, ge=0, le=10, description="ControlNet strength.")
    ref_images: ImageList | None = Field(None, max_length=8, description="Reference images (edit models such "
                                                                         "as Flux Kontext).")
    hires: HiresRequest | None = None
    vae_tiling: TilingRequest | None = None
    slg: SlgRequest | None = None


_STRENGTH = Field(None, ge=0, le=1, validation_alias=AliasChoices("strength", "denoising_strength"),
                  description="How much the image changes (0..1).")


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
    "txt2img": Txt2ImgRequest, "img2img": Img2ImgRequest, "inpaint": InpaintRequest}


def fields_of_other_modes(data: Mapping[str, Any], mode: str) -> list[str]:
    """Keys of ``data`` that are generation fields, but not of ``mode`` (``strength`` in txt2img)."""
    own = {alias for name, f in MODE_REQUESTS[mode].model_fields.items() for alias in alias_names(name, f)}
    every = {alias for name, f in GenerationRequest.model_fields.items() for alias in alias_names(name, f)}
    return sorted(key for key in data if key in every and key not in own)


class UpscaleRequest(JobOutput):
    """An ESRGAN upscale job."""

    image: ImageInput = Field(description="The image to upscale.")
    upscaler: Name("ESRGAN model name under the esrgan (or upscaler) folder.")
    factor: int | None = Field(None, ge=1, le=8, description="Upscale factor (default: the model's).")


class LoadRequest(ModelChoice):
    """Load a checkpoint (or a diffusion model) with components and options."""

    priority: Priority | None = None
    wait: bool | None = Field(None, description="Answer only when the model is loaded.")


class UnloadRequest(RequestModel):
    """Unload the model."""

    priority: Priority | None = None
    wait: bool | None = Field(None, description="Answer only when the model is unloaded.")
