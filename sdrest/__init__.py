"""sdrest: a self-hosted Stable Diffusion server around stable-diffusion.cpp."""

__version__ = "0.1.0"
