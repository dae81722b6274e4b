"""The typed Python API over stable-diffusion.cpp.

>>> from sdrest.engine import Context
>>> with Context(model_path="models/checkpoints/sd15.safetensors") as ctx:
...     result = ctx.txt2img("a lighthouse at dusk", width=512, height=512, steps=20, seed=42)
...     result.images[0].save("out.png")
"""

from sdrest.engine.context import Context, Generation, image_params, library_defaults, resolve_seed
from sdrest.engine.params import (
    CacheParams,
    ContextParams,
    Embedding,
    GuidanceParams,
    HiresParams,
    ImageGenParams,
    Lora,
    PhotoMakerParams,
    SampleParams,
    SlgParams,
    TilingParams,
    VideoGenParams,
)
from sdrest.engine.tools import Upscaler, canny, convert

__all__ = [
    "CacheParams",
    "Context",
    "ContextParams",
    "Embedding",
    "Generation",
    "GuidanceParams",
    "HiresParams",
    "ImageGenParams",
    "Lora",
    "PhotoMakerParams",
    "SampleParams",
    "SlgParams",
    "TilingParams",
    "Upscaler",
    "VideoGenParams",
    "canny",
    "convert",
    "image_params",
    "library_defaults",
    "resolve_seed",
]
