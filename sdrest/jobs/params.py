"""What of a job's stored parameters a client may see."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

#: Image fields hold paths of saved input files: shown only as "given".
IMAGE_FIELDS = ("init_image", "mask_image", "control_image", "image", "end_image")
#: Resolved server paths kept for the worker; clients named these models by name.
PATH_KEYS = (
    "model_path",
    "upscaler_path",
    "upscale_model_path",
    "pm_id_embed_path",
    "input_path",
    "output_path",
    "vae_path",
)


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the client named them: no server paths, no internal keys."""
    public = {k: v for k, v in params.items() if not k.startswith("_") and k not in PATH_KEYS}
    if isinstance(public.get("model_options"), dict):
        public["model_options"] = public_model_options(public["model_options"])
    for key in IMAGE_FIELDS:
        if key in public:
            public[key] = "given"
    for key in ("ref_images", "pm_id_images", "control_video"):
        if key in public:
            public[key] = len(public[key])
    if "loras" in public:
        public["loras"] = [
            {
                "name": lora["name"],
                "weight": lora["weight"],
                **({"high_noise": True} if lora.get("high_noise") else {}),
            }  # a video job's expert
            for lora in public["loras"]
        ]
    if isinstance(public.get("hires"), dict):
        public["hires"] = {k: v for k, v in public["hires"].items() if k != "model_path"}
    return public


def public_model_options(options: dict[str, Any]) -> dict[str, Any]:
    """Model components and options as clients see them: file names, not server paths
    (``{"vae_path": "/srv/models/vae/x.safetensors"}`` -> ``{"vae": "x.safetensors"}``)."""
    shown: dict[str, Any] = {}
    for key, value in options.items():
        if key == "embeddings":
            shown[key] = [e["name"] for e in value]
        elif key.endswith("_path") and isinstance(value, str):
            shown[key.removesuffix("_path")] = PurePath(value).name
        else:
            shown[key] = value
    return shown
