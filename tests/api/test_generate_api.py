"""The generation API through a real server: sync and async jobs, outputs, queue, cancel."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import test_image
from sdrest._native.buildinfo import build_info
from server_helpers import FAST, Server, link_models, png_base64

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    server = Server(root, link_models(models, root / "models"), "--model", "sd1").start()
    yield server
    server.stop()


def test_wait_returns_the_finished_job_with_images(server: Server) -> None:
    response = server.post("/api/v1/generate", json={**FAST, "prompt": "a red apple", "seed": 5, "wait": True})
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "completed" and job["mode"] == "txt2img"
    assert response.headers["Location"] == f"/api/v1/generate/{job['job_id']}"
    (image,) = job["images"]
    assert image["seed"] == 5 and job["seeds"] == [5]
    assert image["parameters"]["prompt"] == "a red apple"
    decoded = Image.open(io.BytesIO(base64.b64decode(image["data"])))
    assert decoded.size == (64, 64) and np.asarray(decoded).std() > 1
    assert set(job["timings"]) >= {"encoding", "sampling", "decoding", "writing"}
    assert job["generation_time"] > 0 and job["model"] == "sd1"


def test_async_job_image_url_metadata_and_thumbnail(server: Server) -> None:
    response = server.post("/api/v1/generate/text2img", json={**FAST, "prompt": 'a, "quoted" prompt', "seed": 9})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in ("queued", "running") and "data" not in str(job["images"])
    job = server.wait_job(job["job_id"])
    assert job["status"] == "completed"
    url = job["images"][0]["url"]
    file = server.get(url)
    assert file.status_code == 200 and file.headers["Content-Type"] == "image/png"
    png = Image.open(io.BytesIO(file.content))
    infotext = png.text["parameters"]
    assert infotext.startswith('a, "quoted" prompt\n')
    assert "Seed: 9" in infotext and "Size: 64x64" in infotext and "Sampler: Euler" in infotext
    assert json.loads(png.text["sdrest"])["seed"] == 9
    thumb = server.get(url, params={"size": 32})
    assert Image.open(io.BytesIO(thumb.content)).size == (32, 32)
    with_data = server.get(f"/api/v1/generate/{job['job_id']}", params={"base64": "true"}).json()
    assert base64.b64decode(with_data["images"][0]["data"]) == file.content


def test_same_seed_same_image_through_the_api(server: Server) -> None:
    a = server.submit(seed=77, wait=True)
    b = server.submit(seed=77, wait=True)
    first = server.get(a["images"][0]["url"]).content
    second = server.get(b["images"][0]["url"]).content
    assert Image.open(io.BytesIO(first)).tobytes() == Image.open(io.BytesIO(second)).tobytes()


def test_random_seed_is_resolved_and_batch_gets_one_seed_per_image(server: Server) -> None:
    job = server.submit(seed=-1, batch_size=2, wait=True)
    seed = job["parameters"]["seed"]
    assert 0 <= seed < 2**31
    assert job["seeds"] == [seed, seed + 1]
    assert [image["seed"] for image in job["images"]] == [seed, seed + 1]


def test_img2img_with_base64_and_jpeg_output(server: Server) -> None:
    job = server.submit(
        init_image="data:image/png;base64," + png_base64(test_image(96)),
        strength=0.5,
        steps=4,
        output_format="jpeg",
        output_quality=80,
        wait=True,
        width=None,
        height=None,
    )
    assert job["status"] == "completed" and job["mode"] == "img2img"
    # The 96x96 input defines the size (aligned to 8), as documented.
    assert job["parameters"]["width"] == 96 and job["parameters"]["init_image"] == "given"
    file = server.get(job["images"][0]["url"])
    assert file.headers["Content-Type"] == "image/jpeg"


def test_inpainting_with_multipart_upload(server: Server) -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    files = {
        "init_image": ("init.png", _png(test_image()), "image/png"),
        "mask_image": ("mask.png", _png(mask), "image/png"),
    }
    data = {"prompt": "a door", "width": "64", "height": "64", "steps": "1", "wait": "true", "seed": "4"}
    response = server.post("/api/v1/generate/inpainting", files=files, data=data)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["mode"] == "inpaint" and job["status"] == "completed"


def test_generate_infers_the_mode(server: Server) -> None:
    response = server.post(
        "/api/v1/generate",
        json={**FAST, "init_image": png_base64(test_image()), "mask_image": png_base64(Image.new("L", (64, 64), 255))},
    )
    assert response.status_code == 200  # POST /generate answers with the finished job by default
    assert response.json()["mode"] == "inpaint" and response.json()["status"] == "completed"


def test_lora_by_name_is_applied(server: Server) -> None:
    plain = server.submit(seed=12, wait=True)
    styled = server.submit(seed=12, loras=[{"name": "style", "weight": 1.0}], wait=True)
    assert styled["parameters"]["loras"] == [{"name": "style", "weight": 1.0}]
    a = np.asarray(Image.open(io.BytesIO(server.get(plain["images"][0]["url"]).content)), dtype=float)
    b = np.asarray(Image.open(io.BytesIO(server.get(styled["images"][0]["url"]).content)), dtype=float)
    assert np.abs(a - b).mean() > 0.5


def test_upscale_job(server: Server) -> None:
    response = server.post(
        "/api/v1/upscale", json={"image": png_base64(test_image(32)), "upscaler": "x4", "wait": True}
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["mode"] == "upscale" and job["status"] == "completed"
    image = Image.open(io.BytesIO(server.get(job["images"][0]["url"]).content))
    assert image.size == (128, 128)


def test_cancel_queued_and_running_jobs(server: Server) -> None:
    starts = server.status()["worker"]["starts"]
    running = server.submit(steps=30, seed=1)
    queued = server.submit(seed=2)
    server.wait_job(running["job_id"], until=("running",))
    cancelled = server.delete(f"/api/v1/generate/{queued['job_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    response = server.delete(f"/api/v1/generate/{running['job_id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job = server.wait_job(running["job_id"])
    assert job["status"] == "cancelled"
    # The library stopped in place: the same worker runs the next job normally.
    follow = server.submit(seed=3, wait=True)
    assert follow["status"] == "completed"
    assert server.status()["worker"]["starts"] == starts
    again = server.delete(f"/api/v1/generate/{queued['job_id']}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"


def test_priority_runs_first(server: Server) -> None:
    with server.held_worker():  # the three below are certainly queued behind it
        low = server.submit(seed=2, priority=-5)
        normal = server.submit(seed=3)
        high = server.submit(seed=4, priority=10)
        queue = server.get("/api/v1/queue", params={"order": "run"}).json()
    order = [job["job_id"] for job in queue["jobs"]]
    assert order == [high["job_id"], normal["job_id"], low["job_id"]]
    assert [job["queue_position"] for job in queue["jobs"]] == [0, 1, 2]
    done = {j: server.wait_job(j) for j in (low["job_id"], normal["job_id"], high["job_id"])}
    started = sorted(done, key=lambda j: done[j]["started_at"])
    assert started == [high["job_id"], normal["job_id"], low["job_id"]]


def test_fifty_concurrent_submissions_are_all_accounted_for(server: Server) -> None:
    def submit(i: int) -> str:
        response = requests.post(
            server.url("/api/v1/generate"), json={**FAST, "seed": 1000 + i, "steps": 1, "wait": False}, timeout=60
        )
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(submit, range(50)))
    assert len(set(ids)) == 50
    listed = server.get("/api/v1/queue", params={"limit": 200}).json()
    assert set(ids) <= {job["job_id"] for job in listed["jobs"]}
    for job_id in ids:  # don't spend minutes generating them all
        server.delete(f"/api/v1/generate/{job_id}")
    finals = [server.wait_job(job_id)["status"] for job_id in ids]
    assert set(finals) <= {"completed", "cancelled"}
    assert all(server.get(f"/api/v1/generate/{job_id}").status_code == 200 for job_id in ids)


def test_queue_filters_and_pagination(server: Server) -> None:
    made = {server.submit(seed=s, wait=True)["job_id"] for s in (50, 51, 52)}  # txt2img, completed
    completed = server.get("/api/v1/queue", params={"status": "completed", "limit": 2}).json()
    assert len(completed["jobs"]) == 2 and completed["total"] >= 3
    assert all(job["status"] == "completed" for job in completed["jobs"])
    second = server.get("/api/v1/queue", params={"status": "completed", "limit": 2, "offset": 2}).json()
    assert second["jobs"] and second["total"] == completed["total"]
    assert not {j["job_id"] for j in completed["jobs"]} & {j["job_id"] for j in second["jobs"]}
    every = server.get("/api/v1/queue", params={"status": "completed", "limit": completed["total"]}).json()
    assert made <= {j["job_id"] for j in every["jobs"]}
    txt2img = server.get("/api/v1/queue", params={"mode": "txt2img", "limit": 200}).json()
    assert made <= {job["job_id"] for job in txt2img["jobs"]}
    assert all(job["mode"] == "txt2img" for job in txt2img["jobs"])
    upscales = server.get("/api/v1/queue", params={"mode": "upscale", "limit": 200}).json()
    assert not made & {job["job_id"] for job in upscales["jobs"]}
    assert all(job["mode"] == "upscale" for job in upscales["jobs"])
    failed = server.get("/api/v1/queue", params={"status": "failed"}).json()
    assert not made & {j["job_id"] for j in failed["jobs"]}


def test_delete_finished_job_removes_its_files(server: Server) -> None:
    job = server.submit(seed=8, wait=True)
    url = job["images"][0]["url"]
    assert server.get(url).status_code == 200
    assert server.delete(f"/api/v1/jobs/{job['job_id']}").status_code == 204
    assert server.get(url).status_code == 404
    assert not (server.data_dir / "outputs" / job["job_id"]).exists()
    assert server.get(f"/api/v1/generate/{job['job_id']}").status_code == 404


def test_status_and_system(server: Server) -> None:
    before = server.status()["counters"]["completed"]
    server.submit(seed=60, wait=True)
    status = server.status()
    assert status["loaded_model"] == "sd1" and status["worker"]["alive"]
    # What the library reports at run time is what the build recorded (no pin written here).
    assert status["native_version"] == build_info()["sd_cpp_version"]
    assert status["counters"]["completed"] == before + 1 and status["uptime"] > 0
    assert "euler_a" in status["capabilities"]["samplers"]
    system = server.get("/api/v1/system").json()
    assert system["memory"]["total"] > 0 and system["disk"]["free"] > 0
    assert system["backends"] == build_info()["backends"] and system["cpu"]["count"] >= 1


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
