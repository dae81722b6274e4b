"""Where each field of a video job lands in the engine's ``VideoGenParams`` (one table).

The API validates the request (:mod:`sdrest.api.schemas.video`), the worker applies this table
(:mod:`sdrest.worker.video`), and the struct-field walk test checks that every field of the C
``sd_vid_gen_params_t`` is reached from it or documented in docs/api.md.
"""

from __future__ import annotations

__all__ = ["MAX_FRAMES", "VIDEO_FIELDS", "VIDEO_WORKER_FIELDS"]

#: Most frames one job may ask for (Wan's own clips are 81; Wan makes 4k+1 frames).
MAX_FRAMES = 257

#: Video fields -> where each lands in the engine's VideoGenParams (dotted paths, as
#: sdrest.api.schemas.generation.IMAGE_FIELDS). Nested objects are flattened; an object maps to its switch.
_SAMPLE = {
    "steps": "sample_steps", "sampler": "sample_method", "scheduler": "scheduler", "eta": "eta",
    "flow_shift": "flow_shift", "timestep_shift": "shifted_timestep", "sigmas": "custom_sigmas",
    "cfg_scale": "guidance.txt_cfg", "img_cfg_scale": "guidance.img_cfg",
    "guidance": "guidance.distilled_guidance", "slg.layers": "guidance.slg.layers",
    "slg.start": "guidance.slg.layer_start", "slg.end": "guidance.slg.layer_end",
    "slg.scale": "guidance.slg.scale",
}
VIDEO_FIELDS: dict[str, str | tuple[str, ...]] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "width": "width",
    "height": "height",
    "seed": "seed",
    "clip_skip": "clip_skip",
    "strength": "strength",
    "loras": "loras",
    "init_image": "init_image",
    "end_image": "end_image",
    "control_video": "control_frames",
    "video_frames": "video_frames",
    "moe_boundary": "moe_boundary",
    "vace_strength": "vace_strength",
    **{name: f"sample_params.{target}" for name, target in _SAMPLE.items()},
    **{f"high_noise_{name}": f"high_noise_sample_params.{target}" for name, target in _SAMPLE.items()
       if not name.startswith("slg.")},
    **{f"high_noise_slg.{name}": f"high_noise_sample_params.guidance.slg.{target}"
       for name, target in (("layers", "layers"), ("start", "layer_start"), ("end", "layer_end"),
                            ("scale", "scale"))},
    "vae_tiling": "vae_tiling_params.enabled",
    "vae_tiling.tile_size": ("vae_tiling_params.tile_size_x", "vae_tiling_params.tile_size_y"),
    "vae_tiling.tile_size_x": "vae_tiling_params.tile_size_x",
    "vae_tiling.tile_size_y": "vae_tiling_params.tile_size_y",
    "vae_tiling.rel_size_x": "vae_tiling_params.rel_size_x",
    "vae_tiling.rel_size_y": "vae_tiling_params.rel_size_y",
    "vae_tiling.overlap": "vae_tiling_params.target_overlap",
    **{f"cache.{name}": f"cache.{name}" for name in (
        "mode", "reuse_threshold", "start_percent", "end_percent", "error_decay_rate", "use_relative_threshold",
        "reset_error_on_compute", "residual_diff_threshold", "max_warmup_steps", "max_cached_steps",
        "max_continuous_cached_steps", "taylorseer_n_derivatives", "taylorseer_skip_interval", "scm_mask",
        "scm_policy_dynamic", "spectrum_w", "spectrum_m", "spectrum_lam", "spectrum_window_size",
        "spectrum_flex_window", "spectrum_warmup_steps", "spectrum_stop_percent")},
    "cache.fn_compute_blocks": "cache.Fn_compute_blocks",
    "cache.bn_compute_blocks": "cache.Bn_compute_blocks",
}
#: Video fields the worker acts on itself (how the frames are packed), not the library.
VIDEO_WORKER_FIELDS = ("fps",)
