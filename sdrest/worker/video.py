"""A video job in the worker: one ``generate_video`` call, then the frames and the clips.

The job's parameters reach :class:`~sdrest.engine.VideoGenParams` through one table,
:data:`sdrest.jobs.video.VIDEO_FIELDS` (request field -> dotted engine field). The
frames are written as the job's images (PNG unless ``output_format`` says otherwise), then an
animated WebP of them (Pillow), and an MP4 when PyAV is installed (``pip install av``; optional).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from sdrest.jobs.video import VIDEO_FIELDS
from sdrest.worker.mapping import fill, loras

if TYPE_CHECKING:
    from sdrest.worker.runner import Runner, StageClock

#: Frames per second of the clips when the job does not say (Wan's own rate).
DEFAULT_FPS = 16


def video_params(params: dict[str, Any], input_path: Callable[[str], Path]) -> Any:
    """The engine's VideoGenParams for a job's stored parameters."""
    from sdrest.engine import VideoGenParams

    def value_of(key: str, value: Any) -> Any:
        if key in ("init_image", "end_image"):
            return Image.open(input_path(value))
        if key == "control_video":
            return [Image.open(input_path(path)) for path in value]
        return loras(value) if key == "loras" else value

    return fill(VideoGenParams(), VIDEO_FIELDS, params, value_of)


def generate(runner: Runner, job: dict[str, Any], params: dict[str, Any], clock: StageClock) -> dict[str, Any]:
    """Run one video job on the runner's current model; the job's result."""
    clock.enter("encoding")
    video = video_params(params, runner._input_path)
    on_log, on_progress = runner.stage_callbacks(job, params, clock)
    runner._check_cancel()
    frames = runner.context.generate_video(video, on_progress=on_progress, on_log=on_log)
    clock.enter("writing")
    resolved = runner._resolve(params)
    seed = int(params["seed"])
    images = runner._write(job, params, frames, [seed] * len(frames), resolved)
    directory = runner.settings.outputs_dir / job["id"]
    try:
        videos = write_clips(frames, directory, job["id"], int(params.get("fps") or DEFAULT_FPS))
    except OSError:
        from sdrest.outputs import discard_job_outputs

        discard_job_outputs(runner.settings.outputs_dir, job["id"])
        raise
    return {
        "images": images,
        "videos": videos,
        "seeds": [seed],
        "model": runner.model_name,
        "resolved": resolved,
        "warnings": [],
    }


def write_clips(frames: list[Image.Image], directory: Path, job_id: str, fps: int) -> list[dict[str, Any]]:
    """The frames as an animated WebP (always) and an MP4 (with PyAV): the result's ``videos``."""
    width, height = frames[0].size
    common = {"frames": len(frames), "fps": fps, "width": width, "height": height}
    webp = directory / "video.webp"
    frames[0].save(
        webp, format="WEBP", save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0, lossless=True
    )
    videos = [{"index": 0, "file": f"{job_id}/{webp.name}", "format": "webp", **common}]
    if write_mp4(frames, directory / "video.mp4", fps):
        videos.append({"index": 1, "file": f"{job_id}/video.mp4", "format": "mp4", **common})
    return videos


def write_mp4(frames: list[Image.Image], path: Path, fps: int) -> bool:
    """Encode ``frames`` as H.264 (yuv420p) with PyAV; False when PyAV is not installed."""
    try:
        import av
    except ImportError:
        return False
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        # yuv420p (what every player decodes) needs even sizes: Wan's are multiples of 8 anyway.
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame.convert("RGB"))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return True
