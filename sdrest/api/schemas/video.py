"""The request body of a video job (``POST /api/v1/generate/video``: Wan and other video models).

Every field of the library's ``sd_vid_gen_params_t`` that a client can choose is here;
``VIDEO_FIELDS`` says where each one lands (the worker applies that table, and the
struct-field walk test checks that every C field is reached from it or documented).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field

from sdrest.api.schemas.base import QueryModel
from sdrest.api.schemas.fields import ImageInput, ImageList, ModelFile
from sdrest.api.schemas.generation import (
    MAX_SIGMAS,
    CacheRequest,
    JobOutput,
    LoraRequest,
    ModelChoice,
    Sampler,
    Scheduler,
    SlgRequest,
    TilingRequest,
)
from sdrest.jobs.video import MAX_FRAMES, VIDEO_FIELDS, VIDEO_WORKER_FIELDS

#: Video components beside ModelChoice's: request field -> (ContextParams field, model type folder).
VIDEO_COMPONENTS = {"high_noise_diffusion_model": ("high_noise_diffusion_model_path", "diffusion_model")}

__all__ = [
    "MAX_FRAMES",
    "VIDEO_COMPONENTS",
    "VIDEO_FIELDS",
    "VIDEO_WORKER_FIELDS",
    "VideoLoraRequest",
    "VideoQuery",
    "VideoRequest",
]

VideoSize = Annotated[int, Field(ge=64, le=2048, multiple_of=8)]


class VideoLoraRequest(LoraRequest):
    high_noise: bool | None = Field(
        None, description="Apply it to the high-noise expert (Wan 2.2 MoE) instead of the low-noise one."
    )


class VideoRequest(ModelChoice, JobOutput):
    """A video job: the frames (each an image of the job), an animated WebP, and an MP4 where PyAV
    is installed. Name the video model in ``model`` (a checkpoint) or ``diffusion_model``."""

    high_noise_diffusion_model: ModelFile | None = Field(
        None,
        description="Wan2.2 MoE: the high-noise expert (diffusion_models folder); "
        "the diffusion model is then the low-noise one.",
    )
    prompt: str = Field(max_length=20000, description="What to film.", examples=["a boat on a calm sea"])
    negative_prompt: str | None = Field(None, max_length=20000, description="What to avoid.")
    width: VideoSize | None = Field(
        None, description="Frame width (default: the init image's, else 512).", examples=[512]
    )
    height: VideoSize | None = Field(None, description="Frame height.", examples=[512])
    video_frames: int | None = Field(
        None,
        ge=1,
        le=MAX_FRAMES,
        description="Frames to generate (library default 6; Wan makes 4k+1 frames, so 33 or 81 are usual).",
    )
    fps: int | None = Field(
        None, ge=1, le=120, description="Frames per second of the WebP and MP4 (default 16, Wan's own rate)."
    )
    steps: int | None = Field(None, ge=1, le=150, description="Sampling steps.")
    cfg_scale: float | None = Field(None, ge=0, le=50, description="Classifier-free guidance scale.")
    img_cfg_scale: float | None = Field(None, ge=0, le=50, description="Image guidance scale.")
    guidance: float | None = Field(None, ge=0, le=100, description="Distilled guidance.")
    sampler: Sampler | None = Field(None, validation_alias=AliasChoices("sampler", "sample_method"))
    scheduler: Scheduler | None = None
    eta: float | None = Field(None, ge=0, le=10, description="Noise multiplier of ancestral/DDIM samplers.")
    flow_shift: float | None = Field(None, ge=0, le=100, description="Flow shift (Wan default 5).")
    timestep_shift: int | None = Field(None, ge=0, le=1000, description="Shifted timestep (0: off).")
    sigmas: list[Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)]] | None = Field(
        None, min_length=2, max_length=MAX_SIGMAS, description="Custom sigma schedule (overrides scheduler and steps)."
    )
    slg: SlgRequest | None = None
    seed: int | None = Field(None, ge=-1, le=2**63 - 1, description="Seed; -1 picks a random one.")
    clip_skip: int | None = Field(None, ge=-1, le=12, description="Text encoder layers to skip.")
    strength: float | None = Field(
        None,
        ge=0,
        le=1,
        validation_alias=AliasChoices("strength", "denoising_strength"),
        description="How much init_image changes (0..1).",
    )
    loras: list[VideoLoraRequest] | None = Field(
        None, max_length=16, description="LoRAs to apply (<lora:name:weight> tags in the prompt too)."
    )
    init_image: ImageInput | None = Field(None, description="First frame (image-to-video).")
    end_image: ImageInput | None = Field(None, description="Last frame (first-last-frame-to-video models).")
    control_video: ImageList | None = Field(
        None, max_length=MAX_FRAMES, description="Control frames, in order (VACE models; sd-cli --control-video)."
    )
    moe_boundary: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Wan2.2 MoE: the timestep fraction where the low-noise expert takes over (library default 0.875).",
    )
    vace_strength: float | None = Field(None, ge=0, le=10, description="VACE control strength (default 1).")
    high_noise_steps: int | None = Field(
        None, ge=1, le=150, description="High-noise expert: sampling steps (default: automatic)."
    )
    high_noise_cfg_scale: float | None = Field(None, ge=0, le=50, description="High-noise expert: CFG scale.")
    high_noise_img_cfg_scale: float | None = Field(
        None, ge=0, le=50, description="High-noise expert: image guidance scale."
    )
    high_noise_guidance: float | None = Field(None, ge=0, le=100, description="High-noise expert: distilled guidance.")
    high_noise_sampler: Sampler | None = None
    high_noise_scheduler: Scheduler | None = None
    high_noise_eta: float | None = Field(None, ge=0, le=10, description="High-noise expert: eta.")
    high_noise_flow_shift: float | None = Field(None, ge=0, le=100, description="High-noise expert: flow shift.")
    high_noise_timestep_shift: int | None = Field(
        None, ge=0, le=1000, description="High-noise expert: shifted timestep."
    )
    high_noise_sigmas: list[Annotated[float, Field(ge=0, le=1e4, allow_inf_nan=False)]] | None = Field(
        None, min_length=2, max_length=MAX_SIGMAS, description="High-noise expert: custom sigma schedule."
    )
    high_noise_slg: SlgRequest | None = None
    vae_tiling: TilingRequest | None = None
    cache: CacheRequest | None = None


class VideoQuery(QueryModel):
    download: bool = Field(False, description="Served as an attachment.")
    token: str | None = Field(None, description="The image token of a --public-images URL.")
