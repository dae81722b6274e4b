"""What of a job's stored parameters a client may see."""

from __future__ import annotations

from typing import Any

#: Image fields hold paths of saved input files: shown only as "given".
IMAGE_FIELDS = ("init_image", "mask_image", "control_image", "image")


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the client named them: no server paths, no internal keys."""
    public = {k: v for k, v in params.items() if not k.startswith("_") and k != "upscaler_path"}
    for key in IMAGE_FIELDS:
        if key in public:
            public[key] = "given"
    if "ref_images" in public:
        public["ref_images"] = len(public["ref_images"])
    if "loras" in public:
        public["loras"] = [{"name": lora["name"], "weight": lora["weight"]} for lora in public["loras"]]
    if isinstance(public.get("hires"), dict):
        public["hires"] = {k: v for k, v in public["hires"].items() if k != "model_path"}
    return public
