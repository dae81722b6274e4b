"""POST /api/v1/generate/video through a real server, on the synthetic Wan2.1 T2V 1.3B model:
one real video run (frames, animated WebP, MP4), and bad input refused naming the field."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from helpers import test_image
from openapi_helpers import SchemaChecker
from sdrest.synthetic import SyntheticModels, ensure_synthetic_models
from server_helpers import Server, link_models, png_base64

pytestmark = pytest.mark.slow

#: The cheapest real video: 5 frames (2 latent frames: Wan makes 4k+1) of 64x64, one step, no CFG.
VIDEO = {
    "prompt": "a boat",
    "diffusion_model": "wan",
    "taesd": "taehv",
    "width": 64,
    "height": 64,
    "video_frames": 5,
    "fps": 8,
    "steps": 1,
    "cfg_scale": 1.0,
    "sampler": "euler",
    "seed": 7,
}


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@pytest.fixture(scope="module")
def video_models() -> SyntheticModels:
    return ensure_synthetic_models(with_video=True)


@pytest.fixture(scope="module")
def server(video_models: SyntheticModels, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("video")
    models_dir = link_models(video_models, root / "models")
    assert video_models.wan is not None and video_models.wan_taehv is not None
    _link(video_models.wan, models_dir / "diffusion_models" / "wan.gguf")
    _link(video_models.wan_taehv, models_dir / "taesd" / "taehv.safetensors")
    server = Server(root, models_dir, "--model", "sd1").start()
    yield server
    server.stop()


def test_video_job_makes_frames_an_animated_webp_and_an_mp4(server: Server) -> None:
    checker = SchemaChecker(server.get("/api/v1/openapi.json").json())
    response = checker.check(
        server.post("/api/v1/generate/video", json={**VIDEO, "wait": True}), "/api/v1/generate/video", "post"
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "completed", job["error"]
    assert job["mode"] == "video" and job["seeds"] == [7]
    assert set(job["timings"]) >= {"encoding", "sampling", "decoding", "writing"}  # the library's milestones
    assert job["parameters"]["video_frames"] == 5 and job["parameters"]["fps"] == 8
    assert str(server.models_dir) not in response.text and str(server.data_dir) not in response.text
    frames = job["images"]
    assert [frame["index"] for frame in frames] == [0, 1, 2, 3, 4]
    pixels = []
    for frame in frames:
        assert (frame["width"], frame["height"], frame["format"]) == (64, 64, "png")
        file = server.get(frame["url"])
        assert file.status_code == 200 and file.headers["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(file.content))
        assert image.size == (64, 64)
        pixels.append(np.asarray(image.convert("RGB"), dtype=np.float32))
    assert all(p.std() > 1 for p in pixels)  # decoded frames, not blank ones
    webp, mp4 = job["videos"]
    assert (webp["format"], webp["frames"], webp["fps"], webp["width"], webp["height"]) == ("webp", 5, 8, 64, 64)
    clip = checker.check(server.get(webp["url"]), "/api/v1/jobs/{job_id}/videos/{index}", "get")
    assert clip.status_code == 200 and clip.headers["Content-Type"] == "image/webp"
    animation = Image.open(io.BytesIO(clip.content))
    assert animation.size == (64, 64)
    durations = []
    for index, frame in enumerate(ImageSequence.Iterator(animation)):  # lossless: each is the PNG frame
        assert np.array_equal(np.asarray(frame.convert("RGB"), dtype=np.float32), pixels[index])
        durations.append(frame.info["duration"])
    assert durations == [125] * 5  # 5 frames at 8 fps
    av = pytest.importorskip("av")
    assert mp4["format"] == "mp4" and mp4["frames"] == 5
    movie = server.get(mp4["url"])
    assert movie.status_code == 200 and movie.headers["Content-Type"] == "video/mp4"
    with av.open(io.BytesIO(movie.content)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == 5 and (decoded[0].width, decoded[0].height) == (64, 64)
    assert server.get(f"/api/v1/jobs/{job['job_id']}/videos/2").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"video_frames": 0}, 422, "video_frames"),
        ({"video_frames": 10_000}, 422, "video_frames"),
        ({"fps": 0}, 422, "fps"),
        ({"width": 60}, 422, "width"),
        ({"moe_boundary": 1.5}, 422, "moe_boundary"),
        ({"vace_strength": -1}, 422, "vace_strength"),
        ({"high_noise_steps": 0}, 422, "high_noise_steps"),
        ({"high_noise_sampler": "no-such-sampler"}, 422, "high_noise_sampler"),
        ({"prompt": None}, 422, "prompt"),
        ({"high_noise_diffusion_model": "missing"}, 404, "high_noise_diffusion_model"),
        ({"high_noise_diffusion_model": "../../etc/passwd"}, 400, "high_noise_diffusion_model"),
        ({"end_image": "not base64 at all!"}, 400, "end_image"),
        ({"control_video": ["not an image"]}, 422, "control_video[0]"),
        ({"frames_per_second": 8}, 400, "frames_per_second"),
    ],
)
def test_bad_video_input_names_the_field(server: Server, body: dict, status: int, field: str) -> None:
    response = server.post("/api/v1/generate/video", json={**VIDEO, **body})
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    assert server.get("/api/v1/status").status_code == 200


def test_video_inputs_are_saved_at_the_frame_size(server: Server) -> None:
    """init/end images and control frames are stored at the video's size when the job is queued;
    a listed LoRA keeps the expert it is for."""
    big = png_base64(test_image(96, 80))
    with server.held_worker():
        response = server.post(
            "/api/v1/generate/video",
            json={
                **VIDEO,
                "init_image": big,
                "end_image": big,
                "control_video": [big, big],
                "wait": False,
                "prompt": "a boat <lora:style:0.5>",
                "loras": [{"name": "style", "weight": 0.25, "high_noise": True}],
            },
        )
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] == "queued" and job["parameters"]["mode"] == "video"
        shown = job["parameters"]
        assert (shown["init_image"], shown["end_image"], shown["control_video"]) == ("given", "given", 2)
        assert shown["loras"] == [
            {"name": "style", "weight": 0.25, "high_noise": True},
            {"name": "style", "weight": 0.5},
        ]  # the listed one, then the prompt's tag
        saved = {path.stem: Image.open(path).size for path in (server.data_dir / "inputs").rglob("*.png")}
        assert server.delete(f"/api/v1/generate/{job['job_id']}").status_code == 200
    assert {
        name: saved.get(name) for name in ("init_image", "end_image", "control_frame_0", "control_frame_1")
    } == dict.fromkeys(("init_image", "end_image", "control_frame_0", "control_frame_1"), (64, 64))


def test_an_image_model_refuses_a_video_job(server: Server) -> None:
    body = {key: value for key, value in VIDEO.items() if key not in ("diffusion_model", "taesd")}
    response = server.post("/api/v1/generate/video", json={**body, "model": "sd1", "wait": True})
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "failed" and "cannot generate video" in job["error"]["message"]
    assert job["error"]["code"] != "worker_crashed" and server.status()["worker"]["alive"]
