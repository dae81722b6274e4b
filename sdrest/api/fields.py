"""Every request field the generation API accepts, declared once.

The table below drives validation (:mod:`sdrest.api.requests`) and the OpenAPI document
(:mod:`sdrest.api.openapi`), so a field cannot be accepted without being documented, or
documented without being accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Generation modes and the endpoint path of each.
MODES = {"txt2img": "text2img", "img2img": "img2img", "inpaint": "inpainting"}


@dataclass(frozen=True)
class Field:
    """One request field: its JSON type, limits and documentation."""

    name: str
    kind: str                       # string | integer | number | boolean | image | images | object | array | choice
    description: str
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: int | None = None
    choices: tuple[str, ...] | str | None = None   # a tuple, or the name of a worker capability list
    aliases: tuple[str, ...] = ()
    max_length: int | None = None
    max_items: int | None = None
    modes: tuple[str, ...] = ("txt2img", "img2img", "inpaint")
    properties: tuple[Field, ...] = ()              # for kind "object" / arrays of objects
    example: Any = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON Schema (OpenAPI 3.1)."""
        kind = self.kind
        schema: dict[str, Any]
        if kind in ("string", "choice"):
            schema = {"type": "string"}
            if self.max_length:
                schema["maxLength"] = self.max_length
            if isinstance(self.choices, tuple):
                schema["enum"] = list(self.choices)
        elif kind in ("integer", "number"):
            schema = {"type": kind}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
            if self.multiple_of:
                schema["multipleOf"] = self.multiple_of
        elif kind == "boolean":
            schema = {"type": "boolean"}
        elif kind == "image":
            schema = {"type": "string", "description": "base64, data URL, http(s) URL, or a multipart file part"}
        elif kind == "images":
            schema = {"type": "array", "items": {"type": "string"}, "maxItems": self.max_items}
        elif kind == "object":
            schema = {"type": "object", "additionalProperties": False,
                      "properties": {p.name: p.schema() for p in self.properties}}
        elif kind == "array":
            item = ({"type": "object", "additionalProperties": False,
                     "properties": {p.name: p.schema() for p in self.properties}}
                    if self.properties else {"type": "number"})
            schema = {"type": "array", "items": item}
            if self.max_items:
                schema["maxItems"] = self.max_items
        else:  # pragma: no cover - the table has no other kinds
            raise ValueError(kind)
        schema["description"] = self.description + (
            f" Also accepted as: {', '.join(self.aliases)}." if self.aliases else "")
        if isinstance(self.choices, str):
            schema["description"] += f" One of GET /api/v1/status capabilities.{self.choices}."
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema


_HIRES = (
    Field("upscaler", "choice", "How the first pass is enlarged.", choices="hires_upscalers"),
    Field("scale", "number", "Enlargement factor (ignored when width/height are given).", minimum=1, maximum=4),
    Field("width", "integer", "Target width.", minimum=64, maximum=8192, multiple_of=8),
    Field("height", "integer", "Target height.", minimum=64, maximum=8192, multiple_of=8),
    Field("steps", "integer", "Second-pass steps (0: same as steps).", minimum=0, maximum=150),
    Field("denoising_strength", "number", "Second-pass denoising strength.", minimum=0, maximum=1),
)
_TILING = (
    Field("tile_size", "integer", "Tile size in latent pixels.", minimum=8, maximum=1024),
    Field("overlap", "number", "Tile overlap fraction.", minimum=0, maximum=0.95),
)
_SLG = (
    Field("layers", "array", "Layers to skip.", max_items=64),
    Field("start", "number", "Start, as a fraction of the steps.", minimum=0, maximum=1),
    Field("end", "number", "End, as a fraction of the steps.", minimum=0, maximum=1),
    Field("scale", "number", "Skip-layer guidance scale.", minimum=0, maximum=100),
)
_LORA = (
    Field("name", "string", "LoRA file name under the lora folder (extension optional).", max_length=512),
    Field("weight", "number", "Strength.", minimum=-10, maximum=10),
)

#: Components and context options a request may name; they decide what the worker loads.
#: Request name -> (sdrest_engine ContextParams field, model type folder or None for options).
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

MODEL_FIELDS: tuple[Field, ...] = (
    Field("model", "string", "Checkpoint name under the checkpoints folder; default: the loaded model.",
          max_length=512),
    *(Field(name, "string", f"{name} file name (in the {folder.replace('_', ' ')} folder).", max_length=512)
      for name, (_, folder) in MODEL_COMPONENTS.items()),
    Field("weight_type", "choice", "Convert weights on load (e.g. q8_0, f16).", choices="weight_types"),
    Field("flash_attn", "boolean", "Use flash attention."),
    Field("offload_to_cpu", "boolean", "Keep weights in RAM and move them to the GPU when needed."),
    Field("keep_vae_on_cpu", "boolean", "Run the VAE on the CPU."),
    Field("keep_clip_on_cpu", "boolean", "Run the text encoders on the CPU."),
    Field("keep_controlnet_on_cpu", "boolean", "Run the ControlNet on the CPU."),
    Field("vae_conv_direct", "boolean", "Direct convolutions in the VAE."),
    Field("diffusion_conv_direct", "boolean", "Direct convolutions in the diffusion model."),
)

#: How any image job's results are written and answered (shared by every job kind).
_JOB_OUTPUT_FIELDS: tuple[Field, ...] = (
    Field("output_format", "string", "Image file format.", choices=("png", "jpeg", "webp")),
    Field("output_quality", "integer", "JPEG/WebP quality.", minimum=1, maximum=100),
    Field("priority", "integer", "Higher runs first; equal priorities run in order.", minimum=-100, maximum=100),
    Field("wait", "boolean", "Answer only when the job has finished (also ?wait=true)."),
    Field("base64", "boolean", "Include each image as base64 in the answer (default: with wait)."),
)

GENERATION_FIELDS: tuple[Field, ...] = (
    Field("prompt", "string", "What to draw; <lora:name:weight> tags apply LoRAs.", max_length=20000,
          example="a lighthouse on a cliff at dusk"),
    Field("negative_prompt", "string", "What to avoid.", max_length=20000),
    MODEL_FIELDS[0],
    *MODEL_FIELDS[1:],
    Field("preset", "string", "Start from this preset (presets folder); the request's own fields win.",
          max_length=512),
    Field("prompt_template", "string", "Prompt template (prompts folder); {prompt} is replaced.", max_length=512),
    Field("negative_prompt_template", "string", "Negative prompt template (neg_prompts folder).",
          max_length=512),
    Field("width", "integer", "Image width (img2img default: the input image's).", minimum=64, maximum=4096,
          multiple_of=8, example=512),
    Field("height", "integer", "Image height.", minimum=64, maximum=4096, multiple_of=8, example=512),
    Field("steps", "integer", "Sampling steps.", minimum=1, maximum=150, example=20),
    Field("cfg_scale", "number", "Classifier-free guidance scale.", minimum=0, maximum=50, example=7),
    Field("guidance", "number", "Distilled guidance (Flux and similar).", minimum=0, maximum=100),
    Field("img_cfg_scale", "number", "Image guidance scale (instruct-pix2pix style models).", minimum=0,
          maximum=50),
    Field("sampler", "choice", "Sampling method; default: the model's.", choices="samplers",
          aliases=("sampler_name", "sample_method")),
    Field("scheduler", "choice", "Sigma schedule; default: the model's.", choices="schedulers"),
    Field("seed", "integer", "Seed; -1 picks a random one (the real seed is reported).",
          minimum=-1, maximum=2**63 - 1, example=-1),
    Field("batch_count", "integer", "Number of images; image i uses seed + i.", minimum=1, maximum=16,
          aliases=("batch_size",)),
    Field("clip_skip", "integer", "CLIP layers to skip (-1: the model's default).", minimum=-1, maximum=12),
    Field("strength", "number", "How much img2img/inpainting changes the image (0..1).", minimum=0, maximum=1,
          aliases=("denoising_strength",), modes=("img2img", "inpaint")),
    Field("eta", "number", "Noise multiplier of ancestral/DDIM samplers.", minimum=0, maximum=10),
    Field("flow_shift", "number", "Shift of flow-matching schedules.", minimum=0, maximum=100),
    Field("loras", "array", "LoRAs to apply.", max_items=16, properties=_LORA),
    Field("init_image", "image", "The image to start from.", modes=("img2img", "inpaint")),
    Field("mask_image", "image", "Inpainting mask: white is repainted.", modes=("inpaint",)),
    Field("control_image", "image", "ControlNet condition image."),
    Field("control_strength", "number", "ControlNet strength.", minimum=0, maximum=10),
    Field("ref_images", "images", "Reference images (edit models such as Flux Kontext).", max_items=8),
    Field("hires", "object", "Hires fix: a second, enlarged pass.", properties=_HIRES),
    Field("vae_tiling", "object", "Decode in tiles to save memory.", properties=_TILING),
    Field("slg", "object", "Skip-layer guidance (SD3/Wan).", properties=_SLG),
    *_JOB_OUTPUT_FIELDS,
)

UPSCALE_FIELDS: tuple[Field, ...] = (
    Field("image", "image", "The image to upscale."),
    Field("upscaler", "string", "ESRGAN model name under the esrgan (or upscaler) folder.", max_length=512),
    Field("factor", "integer", "Upscale factor (default: the model's).", minimum=1, maximum=8),
    *_JOB_OUTPUT_FIELDS,
)

LOAD_FIELDS: tuple[Field, ...] = (
    *MODEL_FIELDS,
    Field("priority", "integer", "Higher runs first.", minimum=-100, maximum=100),
    Field("wait", "boolean", "Answer only when the model is loaded."),
)

UNLOAD_FIELDS: tuple[Field, ...] = (
    Field("priority", "integer", "Higher runs first.", minimum=-100, maximum=100),
    Field("wait", "boolean", "Answer only when the model is unloaded."),
)

#: Fields that steer the request, not the generation (kept out of job parameters).
CONTROL_FIELDS = ("wait", "base64", "priority", "preset", "prompt_template", "negative_prompt_template")

#: Request fields accepted only when the server runs with test hooks (never documented).
TEST_FIELDS = ("_test_crash",)
