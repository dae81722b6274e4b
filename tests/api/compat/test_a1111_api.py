"""The AUTOMATIC1111 API through a real server, as SillyTavern, Open WebUI and scripts use it."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, PngImagePlugin

from compat_helpers import (
    A1111_FAST,
    compat_server,
    decode_png,
    open_raw_request,
    png_bytes,
    running_job,
    wait_until,
)
from helpers import test_image
from server_helpers import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    server = compat_server(models, tmp_path_factory.mktemp("a1111"))
    yield server
    server.stop()


def txt2img(server: Server, **fields) -> dict:
    response = server.post("/sdapi/v1/txt2img", json={**A1111_FAST, **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    body["info"] = json.loads(body["info"])
    return body


def test_options_as_health_check_and_the_model_lists(server: Server) -> None:
    options = server.get("/sdapi/v1/options").json()
    assert options["sd_model_checkpoint"].startswith("sd1.safetensors")
    assert options["CLIP_stop_at_last_layers"] == 1
    models = {m["model_name"]: m for m in server.get("/sdapi/v1/sd-models").json()}
    assert set(models) == {"sd1", "sd1b"} and models["sd1"]["filename"] == "sd1.safetensors"
    samplers = {s["name"]: s["aliases"] for s in server.get("/sdapi/v1/samplers").json()}
    assert samplers["Euler a"] == ["euler_a"] and samplers["DPM++ 2M"] == ["dpm++2m"]
    schedulers = {s["label"]: s["name"] for s in server.get("/sdapi/v1/schedulers").json()}
    assert schedulers["Karras"] == "karras" and schedulers["Automatic"] == "automatic"
    assert {
        "name": "x4",
        "model_name": "ESRGAN",
        "model_path": "x4.safetensors",
        "model_url": None,
        "scale": 4,
    } in server.get("/sdapi/v1/upscalers").json()
    assert server.get("/sdapi/v1/latent-upscale-modes").json()[0]["name"] == "Latent"
    assert server.get("/sdapi/v1/loras").json()[0]["name"] == "style"
    assert server.get("/sdapi/v1/prompt-styles").json() == [
        {"name": "cinematic", "prompt": "cinematic photo of {prompt}, film grain", "negative_prompt": "cartoon"}
    ]
    flags = server.get("/sdapi/v1/cmd-flags").json()
    assert flags["threads"] == 2 and "jwt_secret" not in flags
    assert server.get("/sdapi/v1/memory").json()["ram"]["total"] > 0
    # Clients post the whole dict back unchanged: nothing is queued, nothing breaks.
    assert server.post("/sdapi/v1/options", json=options).status_code == 200
    assert server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0


def test_txt2img_info_seeds_and_byte_exact_infotexts(server: Server) -> None:
    body = txt2img(
        server,
        sampler_name="Euler a",
        scheduler="Karras",
        seed=7,
        batch_size=2,
        cfg_scale=6.5,
        negative_prompt="blurry",
        override_settings={"CLIP_stop_at_last_layers": 2},
        alwayson_scripts={"ADetailer": {"args": []}},
        restore_faces=False,
        tiling=False,
    )
    info = body["info"]
    assert info["seed"] == 7 and info["all_seeds"] == [7, 8] and len(info["all_subseeds"]) == 2
    assert info["sampler_name"] == "Euler a" and info["clip_skip"] == 2 and info["sd_model_name"] == "sd1"
    assert info["prompt"] == "a red apple" and info["all_negative_prompts"] == ["blurry", "blurry"]
    assert "alwayson_scripts" in info["sdrest_ignored"] and "restore_faces" not in info["sdrest_ignored"]
    assert len(body["images"]) == 2 and body["parameters"]["batch_size"] == 2
    short_hash = {m["model_name"]: m["hash"] for m in server.get("/sdapi/v1/sd-models").json()}["sd1"]
    assert short_hash and info["sd_model_hash"] == short_hash
    for data, text, seed in zip(body["images"], info["infotexts"], (7, 8), strict=True):
        image = decode_png(data)
        assert image.size == (64, 64)
        assert image.text["parameters"] == text
        assert text == (
            f"a red apple\nNegative prompt: blurry\nSteps: 1, Sampler: Euler a, Schedule type: Karras, "
            f"CFG scale: 6.5, Seed: {seed}, Size: 64x64, Model hash: {short_hash}, Model: sd1, "
            f"Clip skip: 2, Version: {text.rsplit('Version: ', 1)[1]}"
        )
    job = server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()
    assert job["status"] == "completed" and job["parameters"]["sampler"] == "euler_a"


def test_txt2img_override_checkpoint_styles_and_lora_tag(server: Server) -> None:
    body = txt2img(
        server,
        prompt="a cat <lora:style:0.5>",
        styles=["cinematic"],
        override_settings={"sd_model_checkpoint": "sd1b.safetensors"},
        send_images=False,
    )
    info = body["info"]
    assert body["images"] == [] and info["sd_model_name"] == "sd1b"
    assert info["prompt"] == "cinematic photo of a cat <lora:style:0.5>, film grain"
    assert info["negative_prompt"] == "cartoon"
    assert "<lora:style:0.5>" in info["infotexts"][0]
    job = server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()
    assert job["parameters"]["loras"] == [{"name": "style", "weight": 0.5}] and job["model"] == "sd1b"


def test_post_options_switches_the_checkpoint_then_progress_goes_idle(server: Server) -> None:
    current = server.get("/sdapi/v1/options").json()["sd_model_checkpoint"].split(" ")[0]
    target = "sd1b.safetensors" if current == "sd1.safetensors" else "sd1.safetensors"
    response = server.post("/sdapi/v1/options", json={"sd_model_checkpoint": target})
    assert response.status_code == 200 and response.json() is None
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert server.get("/sdapi/v1/options").json()["sd_model_checkpoint"].startswith(target)
    assert server.status()["loaded_model"] == target.removesuffix(".safetensors")


def test_post_options_sd_vae_reloads_the_model_with_it(server: Server) -> None:
    assert server.get("/sdapi/v1/sd-vae").json() == [{"model_name": "vae", "filename": "vae.safetensors"}]
    assert server.post("/sdapi/v1/options", json={"sd_vae": "vae"}).status_code == 200
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert server.get("/sdapi/v1/options").json()["sd_vae"] == "vae"
    assert server.status()["loaded_model_options"]["vae"] == "vae.safetensors"
    info = txt2img(server)["info"]  # later calls keep the loaded VAE
    assert server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()["status"] == "completed"
    assert server.status()["loaded_model_options"]["vae"] == "vae.safetensors"
    assert server.post("/sdapi/v1/options", json={"sd_vae": "Automatic"}).status_code == 200
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert server.get("/sdapi/v1/options").json()["sd_vae"] == "Automatic"


def test_img2img_inpainting_with_inverted_blurred_mask(server: Server) -> None:
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (16, 16, 48, 48))  # inverted below: the square is repainted
    response = server.post(
        "/sdapi/v1/img2img",
        json={
            **A1111_FAST,
            "init_images": ["data:image/png;base64," + base64.b64encode(png_bytes(test_image())).decode()],
            "mask": base64.b64encode(png_bytes(mask)).decode(),
            "inpainting_mask_invert": 1,
            "mask_blur": 2,
            "denoising_strength": 0.6,
            "inpainting_fill": 1,
            "inpaint_full_res": False,
            "include_init_images": True,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert len(body["images"]) == 2  # the result, then the init image (include_init_images)
    assert decode_png(body["images"][1]).tobytes() == test_image().tobytes()
    assert body["parameters"]["init_images"] is None and body["parameters"]["mask"] is None
    assert info["denoising_strength"] == 0.6 and "Denoising strength: 0.6" in info["infotexts"][0]
    assert info["sdrest_ignored"] == {}
    job = server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()
    assert job["mode"] == "inpaint" and job["parameters"]["mask_image"] == "given"
    saved = np.asarray(Image.open(next((server.data_dir / "inputs").glob("*/mask_image.png"))))
    assert saved[32, 32] == 255 and saved[2, 2] == 0 and 0 < saved[16, 32] < 255  # inverted, then blurred


def test_img2img_without_mask_takes_the_init_image_size_and_strength(server: Server) -> None:
    init = base64.b64encode(png_bytes(test_image(64))).decode()
    body = server.post(
        "/sdapi/v1/img2img",
        json={**A1111_FAST, "init_images": [init, init], "denoising_strength": 0.3, "sampler_name": "DPM++ 2M Karras"},
    )
    assert body.status_code == 200, body.text
    info = json.loads(body.json()["info"])
    assert "init_images" in info["sdrest_ignored"] and "inpaint_full_res" not in info["sdrest_ignored"]
    job = server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()
    assert job["mode"] == "img2img" and job["parameters"]["strength"] == 0.3
    assert job["parameters"]["sampler"] == "dpm++2m" and job["parameters"]["scheduler"] == "karras"


def test_interrupt_during_a_run_with_live_preview(server: Server) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(server.post, "/sdapi/v1/txt2img", json={**A1111_FAST, "steps": 60, "seed": 11})
        progress = wait_until(
            lambda: (
                (p := server.get("/sdapi/v1/progress").json())["state"]["sampling_step"] >= 2
                and p["current_image"]
                and p
            )
        )
        assert 0 < progress["progress"] < 1 and progress["state"]["sampling_steps"] == 60
        assert progress["state"]["job_count"] == 1 and progress["state"]["job"] == "txt2img"
        assert decode_png(progress["current_image"]).size[0] > 0
        assert server.get("/sdapi/v1/progress", params={"skip_current_image": "true"}).json()["current_image"] is None
        assert server.post("/sdapi/v1/interrupt").json() == {}
        response = call.result(timeout=120)
    assert response.status_code == 200
    body = response.json()
    info = json.loads(body["info"])
    assert body["images"] == [] and info["interrupted"] is True
    assert server.get(f"/api/v1/jobs/{info['sdrest_job_id']}").json()["status"] == "cancelled"
    assert server.get("/sdapi/v1/progress").json()["state"]["interrupted"] is True


def test_png_info_round_trip(server: Server) -> None:
    body = txt2img(server, seed=21, negative_prompt='dark, "noisy"')
    info = body["info"]
    answer = server.post("/sdapi/v1/png-info", json={"image": body["images"][0]}).json()
    assert answer["info"] == info["infotexts"][0]
    parameters = answer["parameters"]
    assert parameters["Prompt"] == "a red apple" and parameters["Negative prompt"] == 'dark, "noisy"'
    assert parameters["Seed"] == "21" and parameters["Size-1"] == "64" and parameters["Size-2"] == "64"
    assert json.loads(answer["items"]["sdrest"])["seed"] == 21
    # An image A1111 wrote reads back the same way.
    chunk = PngImagePlugin.PngInfo()
    chunk.add_text(
        "parameters",
        "a dog\nNegative prompt: ugly\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, "
        "CFG scale: 7, Seed: 123, Size: 512x768, Model hash: abcdef1234, Model: v1-5",
    )
    buffer = __import__("io").BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=chunk)
    answer = server.post("/sdapi/v1/png-info", json={"image": base64.b64encode(buffer.getvalue()).decode()}).json()
    assert answer["parameters"]["Sampler"] == "DPM++ 2M" and answer["parameters"]["Size-2"] == "768"
    assert answer["parameters"]["Model hash"] == "abcdef1234"


def _png(width: int, height: int, chunks_after_pixels: dict[str, str] | None = None) -> bytes:
    """A grayscale PNG of zero pixels, compressed as it streams (a 13000x13000 one is ~170 KB and
    would take 169 MB to decode), optionally with tEXt chunks after its pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    text = b"".join(chunk(b"tEXt", k.encode() + b"\0" + v.encode()) for k, v in (chunks_after_pixels or {}).items())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + text + chunk(b"IEND", b"")


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_png_info_refuses_a_decompression_bomb_from_its_header(server: Server) -> None:
    bomb = base64.b64encode(_png(13000, 13000)).decode()
    before = _peak_rss_kib(server.process.pid)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # the review's four in parallel
        answers = list(pool.map(lambda _: server.post("/sdapi/v1/png-info", json={"image": bomb}), range(4)))
    for answer in answers:
        assert answer.status_code == 413 and "13000x13000" in answer.json()["detail"]
    grown_mib = (_peak_rss_kib(server.process.pid) - before) / 1024
    assert grown_mib < 64, f"the server's peak memory grew {grown_mib:.0f} MiB"  # a decode takes 169 MiB each
    # Text after the pixel data is still found in an image within the pixel limit.
    late = _png(64, 64, {"parameters": "a cat\nSteps: 3, Sampler: Euler, Seed: 5, Size: 64x64"})
    answer = server.post("/sdapi/v1/png-info", json={"image": base64.b64encode(late).decode()}).json()
    assert answer["info"].startswith("a cat") and answer["parameters"]["Seed"] == "5"


def test_extra_single_image_upscales_with_esrgan(server: Server) -> None:
    image = base64.b64encode(png_bytes(test_image(16))).decode()
    response = server.post(
        "/sdapi/v1/extra-single-image", json={"image": image, "upscaler_1": "x4", "upscaling_resize": 4}
    )
    assert response.status_code == 200, response.text
    assert decode_png(response.json()["image"]).size == (64, 64)
    lanczos = server.post(
        "/sdapi/v1/extra-single-image", json={"image": image, "upscaler_1": "Lanczos", "upscaling_resize": 2}
    ).json()
    assert decode_png(lanczos["image"]).size == (32, 32)


def test_unload_and_reload_checkpoint(server: Server) -> None:
    assert server.post("/sdapi/v1/unload-checkpoint").status_code == 200
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert server.status()["loaded_model"] is None
    assert server.post("/sdapi/v1/reload-checkpoint").status_code == 200
    wait_until(lambda: server.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0)
    assert server.status()["loaded_model"] is not None


def test_refresh_checkpoints_finds_a_new_file(server: Server) -> None:
    new = server.models_dir / "checkpoints" / "added.safetensors"
    new.hardlink_to(server.models_dir / "checkpoints" / "sd1.safetensors")
    try:
        assert server.post("/sdapi/v1/refresh-checkpoints").status_code == 200
        assert "added" in [m["model_name"] for m in server.get("/sdapi/v1/sd-models").json()]
    finally:
        new.unlink()
        server.post("/sdapi/v1/refresh-checkpoints")


def test_client_disconnect_cancels_the_job(server: Server) -> None:
    sock = open_raw_request(server, "/sdapi/v1/txt2img", {**A1111_FAST, "steps": 80, "seed": 31})
    job = wait_until(lambda: running_job(server))
    sock.close()
    finished = server.wait_job(job["job_id"])
    assert finished["status"] == "cancelled"
    assert server.get("/sdapi/v1/options").status_code == 200  # and the server goes on serving


def test_keep_on_disconnect_lets_the_job_finish(models, tmp_path) -> None:
    keeper = compat_server(models, tmp_path, "--keep-on-disconnect")
    try:
        sock = open_raw_request(keeper, "/sdapi/v1/txt2img", {**A1111_FAST, "steps": 6, "seed": 32})
        job = wait_until(lambda: running_job(keeper))
        sock.close()
        assert keeper.wait_job(job["job_id"])["status"] == "completed"
    finally:
        keeper.stop()


def test_a_failed_job_is_an_a1111_error_not_a_hang(server: Server) -> None:
    response = server.post("/sdapi/v1/txt2img", json={**A1111_FAST, "prompt": "sdrest-test-crash:abort"})
    body = response.json()
    assert response.status_code == 500 and body["error"] == "worker_crashed" and "failed" in body["detail"]
    assert server.post("/sdapi/v1/txt2img", json=A1111_FAST).status_code == 200


def test_requests_session_keeps_working_after_errors(server: Server) -> None:
    with requests.Session() as session:
        assert session.post(server.url("/sdapi/v1/txt2img"), json={"steps": "many"}, timeout=30).status_code == 422
        assert session.get(server.url("/sdapi/v1/options"), timeout=30).status_code == 200
