"""Where a generation job's parameters land in the engine's ``ImageGenParams``: one table.

Keys are the job's stored parameters, which are the request's fields
(:mod:`sdrest.api.schemas.generation`) with model names resolved to server paths
(``hires.model`` -> ``hires.model_path``). Nested request objects are flattened (``hires.scale``),
and an object itself maps to its feature's ``enabled`` switch. Values are dotted
``ImageGenParams`` paths (a tuple writes several). The worker applies the table
(:func:`sdrest.worker.mapping.image_gen_params`); ``tests/api/test_struct_walk.py`` proves every
C field is reached from here (or documented in docs/api.md), ``tests/worker/test_mapping.py``
that each row reaches the C struct. Model load options have their own table beside the request
fields (``MODEL_OPTIONS``), which the server stores as ``ContextParams`` field names.
"""

from __future__ import annotations

IMAGE_FIELDS: dict[str, str | tuple[str, ...]] = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "width": "width",
    "height": "height",
    "seed": "seed",
    "batch_count": "batch_count",
    "clip_skip": "clip_skip",
    "strength": "strength",
    "loras": "loras",
    "init_image": "init_image",
    "mask_image": "mask_image",
    "control_image": "control_image",
    "control_strength": "control_strength",
    "ref_images": "ref_images",
    "auto_resize_ref_image": "auto_resize_ref_image",
    "increase_ref_index": "increase_ref_index",
    "steps": "sample_params.sample_steps",
    "sampler": "sample_params.sample_method",
    "scheduler": "sample_params.scheduler",
    "eta": "sample_params.eta",
    "flow_shift": "sample_params.flow_shift",
    "timestep_shift": "sample_params.shifted_timestep",
    "sigmas": "sample_params.custom_sigmas",
    "cfg_scale": "sample_params.guidance.txt_cfg",
    "img_cfg_scale": "sample_params.guidance.img_cfg",
    "guidance": "sample_params.guidance.distilled_guidance",
    "slg.layers": "sample_params.guidance.slg.layers",
    "slg.start": "sample_params.guidance.slg.layer_start",
    "slg.end": "sample_params.guidance.slg.layer_end",
    "slg.scale": "sample_params.guidance.slg.scale",
    "hires": "hires.enabled",
    "hires.upscaler": "hires.upscaler",
    "hires.model_path": "hires.model_path",
    "hires.scale": "hires.scale",
    "hires.width": "hires.target_width",
    "hires.height": "hires.target_height",
    "hires.steps": "hires.steps",
    "hires.denoising_strength": "hires.denoising_strength",
    "hires.upscale_tile_size": "hires.upscale_tile_size",
    "vae_tiling": "vae_tiling_params.enabled",
    "vae_tiling.tile_size": ("vae_tiling_params.tile_size_x", "vae_tiling_params.tile_size_y"),
    "vae_tiling.tile_size_x": "vae_tiling_params.tile_size_x",
    "vae_tiling.tile_size_y": "vae_tiling_params.tile_size_y",
    "vae_tiling.rel_size_x": "vae_tiling_params.rel_size_x",
    "vae_tiling.rel_size_y": "vae_tiling_params.rel_size_y",
    "vae_tiling.overlap": "vae_tiling_params.target_overlap",
    "pm_id_images": "pm_params.id_images",
    "pm_id_embed_path": "pm_params.id_embed_path",
    "pm_style_strength": "pm_params.style_strength",
    **{
        f"cache.{name}": f"cache.{name}"
        for name in (
            "mode",
            "reuse_threshold",
            "start_percent",
            "end_percent",
            "error_decay_rate",
            "use_relative_threshold",
            "reset_error_on_compute",
            "residual_diff_threshold",
            "max_warmup_steps",
            "max_cached_steps",
            "max_continuous_cached_steps",
            "taylorseer_n_derivatives",
            "taylorseer_skip_interval",
            "scm_mask",
            "scm_policy_dynamic",
            "spectrum_w",
            "spectrum_m",
            "spectrum_lam",
            "spectrum_window_size",
            "spectrum_flex_window",
            "spectrum_warmup_steps",
            "spectrum_stop_percent",
        )
    },
    "cache.fn_compute_blocks": "cache.Fn_compute_blocks",
    "cache.bn_compute_blocks": "cache.Bn_compute_blocks",
}
