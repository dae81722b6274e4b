"""Where each field of a video job lands in the engine's ``VideoGenParams`` (one table).

The API validates the request (:mod:`sdrest.api.schemas.video`), the worker applies this table
(:mod:`sdrest.worker.video`), and the struct-field walk test checks that every field of the C
``sd_vid_gen_params_t`` is reached from it. The sampling, tiling and cache rows are those of
images (:data:`~sdrest.jobs.engine_fields.IMAGE_FIELDS`: the same request fields and the same
nested structs); the high-noise expert's sampling rows are the same with ``high_noise_`` before
the request field and the struct.
"""

from __future__ import annotations

from sdrest.jobs.engine_fields import IMAGE_FIELDS

__all__ = ["MAX_FRAMES", "VIDEO_FIELDS", "VIDEO_WORKER_FIELDS"]

#: Most frames one job may ask for (Wan's own clips are 81; Wan makes 4k+1 frames).
MAX_FRAMES = 257


def _rows(prefix: str) -> dict[str, str | tuple[str, ...]]:
    """The image table's rows that write into the nested struct ``prefix`` (``sample_params.``)."""
    return {
        key: targets
        for key, targets in IMAGE_FIELDS.items()
        if all(t.startswith(prefix) for t in ((targets,) if isinstance(targets, str) else targets))
    }


_SAMPLE = _rows("sample_params.")

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
    **_SAMPLE,
    **{f"high_noise_{key}": f"high_noise_{target}" for key, target in _SAMPLE.items()},
    **_rows("vae_tiling_params."),
    **_rows("cache."),
}
#: Video fields the worker acts on itself (how the frames are packed), not the library.
VIDEO_WORKER_FIELDS = ("fps",)
