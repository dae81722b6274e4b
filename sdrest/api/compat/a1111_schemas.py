"""AUTOMATIC1111's ``/sdapi/v1`` request and response bodies, as pydantic models.

Field names, types and defaults are A1111's (``modules/api/models.py`` and the processing
classes it is generated from), so a client's full payload validates. Unknown fields are allowed
(clients send extension fields such as ``alwayson_scripts`` entries that sdrest cannot know):
what sdrest does not use is reported in ``info``, never silently given another meaning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class A1111Request(BaseModel):
    model_config = ConfigDict(extra="allow")


class A1111Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Generation(A1111Request):
    prompt: str = Field("", max_length=20000)
    negative_prompt: str = Field("", max_length=20000)
    styles: list[str] = Field(default_factory=list, description="Prompt styles (GET /sdapi/v1/prompt-styles).")
    seed: int = Field(-1, ge=-1, le=2**63 - 1)
    subseed: int = Field(-1, description="Accepted and reported; variation seeds are not supported.")
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    sampler_name: str | None = Field(None, description="`Euler a`, `DPM++ 2M`, `DPM++ 2M Karras`, ... or sdrest's own.")
    sampler_index: str | None = Field(None, description="Old name of sampler_name.")
    scheduler: str | None = Field(None, description="`Automatic`, `Karras`, `karras`, ...")
    batch_size: int = Field(1, ge=1, le=16)
    n_iter: int = Field(1, ge=1, le=16)
    steps: int = Field(50, ge=1, le=150)
    cfg_scale: float = Field(7.0, ge=0, le=50)
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    restore_faces: bool | None = None
    tiling: bool | None = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    eta: float | None = Field(None, ge=0, le=10)
    denoising_strength: float | None = Field(None, ge=0, le=1)
    s_min_uncond: float | None = None
    s_churn: float | None = None
    s_tmax: float | None = None
    s_tmin: float | None = None
    s_noise: float | None = None
    override_settings: dict[str, Any] = Field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    disable_extra_networks: bool = False
    comments: dict[str, Any] | None = None
    clip_skip: int | None = Field(
        None, ge=-1, le=12, description="sdrest extension; A1111 sets it in override_settings.CLIP_stop_at_last_layers."
    )
    force_task_id: str | None = None
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)
    send_images: bool = True
    save_images: bool = False
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    infotext: str | None = None


class Txt2ImgRequest(_Generation):
    enable_hr: bool = False
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = Field(2.0, ge=1, le=4)
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = Field(0, ge=0, le=150)
    hr_resize_x: int = Field(0, ge=0, le=8192)
    hr_resize_y: int = Field(0, ge=0, le=8192)
    hr_checkpoint_name: str | None = None
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    firstpass_image: str | None = None


class Img2ImgRequest(_Generation):
    init_images: list[str] = Field(
        default_factory=list, max_length=16, description="Base64 images (data URLs too); the first one is used."
    )
    resize_mode: int = Field(0, ge=0, le=3)
    image_cfg_scale: float | None = Field(None, ge=0, le=50)
    mask: str | None = Field(None, description="Base64 inpainting mask: white is repainted.")
    mask_blur_x: int = Field(4, ge=0, le=64)
    mask_blur_y: int = Field(4, ge=0, le=64)
    mask_blur: int | None = Field(None, ge=0, le=64)
    mask_round: bool = True
    inpainting_fill: int = Field(0, ge=0, le=3)
    inpaint_full_res: bool | int = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = Field(0, ge=0, le=1)
    initial_noise_multiplier: float | None = None
    latent_mask: str | None = None
    include_init_images: bool = False


class GenerationResponse(A1111Response):
    images: list[str] = Field(description="Base64 PNG (or the samples_format) images, with their infotext.")
    parameters: dict[str, Any] = Field(description="The request, with A1111's defaults filled in.")
    info: str = Field(description="A JSON string: seeds, prompts, infotexts, model, ...")


class ProgressState(A1111Response):
    skipped: bool
    interrupted: bool
    stopping_generation: bool
    job: str
    job_count: int
    job_timestamp: str
    job_no: int
    sampling_step: int
    sampling_steps: int


class ProgressResponse(A1111Response):
    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None
    textinfo: str | None
    current_task: str | None


class OptionsRequest(A1111Request):
    """Any options; those sdrest does not know are ignored, as A1111 does."""

    sd_model_checkpoint: str | None = None
    sd_vae: str | None = None
    CLIP_stop_at_last_layers: int | None = Field(None, ge=1, le=12)
    samples_format: str | None = Field(None, pattern="^(png|jpg|jpeg|webp)$")
    jpeg_quality: int | None = Field(None, ge=1, le=100)
    eta_ancestral: float | None = Field(None, ge=0, le=10)


class SdModel(A1111Response):
    title: str
    model_name: str
    hash: str | None
    sha256: str | None
    filename: str
    config: str | None


class SdVae(A1111Response):
    model_name: str
    filename: str


class Sampler(A1111Response):
    name: str
    aliases: list[str]
    options: dict[str, str]


class Scheduler(A1111Response):
    name: str
    label: str
    aliases: list[str] | None
    default_rho: float
    need_inner_model: bool


class Upscaler(A1111Response):
    name: str
    model_name: str | None
    model_path: str | None
    model_url: str | None
    scale: float | None


class LatentUpscaleMode(A1111Response):
    name: str


class Lora(A1111Response):
    name: str
    alias: str
    path: str
    metadata: dict[str, Any]


class EmbeddingItem(A1111Response):
    step: int | None
    sd_checkpoint: str | None
    sd_checkpoint_name: str | None
    shape: int | None
    vectors: int | None


class Embeddings(A1111Response):
    loaded: dict[str, EmbeddingItem]
    skipped: dict[str, EmbeddingItem]


class PromptStyle(A1111Response):
    name: str
    prompt: str | None
    negative_prompt: str | None


class ExtraSingleImageRequest(A1111Request):
    image: str = Field(description="Base64 image.")
    resize_mode: int = Field(0, ge=0, le=1)
    show_extras_results: bool = True
    gfpgan_visibility: float = 0
    codeformer_visibility: float = 0
    codeformer_weight: float = 0
    upscaling_resize: float = Field(2, ge=1, le=8)
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = 0
    upscale_first: bool = False


class ExtraSingleImageResponse(A1111Response):
    html_info: str
    image: str


class PngInfoRequest(A1111Request):
    image: str = Field(description="Base64 image (PNG, JPEG or WebP; data URLs too).")


class PngInfoResponse(A1111Response):
    info: str
    items: dict[str, Any]
    parameters: dict[str, Any]


class MemoryResponse(A1111Response):
    ram: dict[str, Any]
    cuda: dict[str, Any]


class A1111Error(A1111Response):
    """A1111's error body (its API middleware's shape), plus the field at fault."""

    error: str
    detail: str
    body: str
    errors: str
    field: str | None = None
