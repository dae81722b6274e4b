"""The model manager through a real server: library, detection, hashes, load/unload/swap
through the queue, per-request components, LoRA tags, presets, templates, safety."""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from sdrest.synthetic.headers import sdxl_checkpoint, write_sparse_safetensors
from server_helpers import FAST, Server, link_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("models-api")
    models_dir = link_models(models, root / "models")
    os.link(models.checkpoint, models_dir / "checkpoints" / "sd1b.safetensors")
    (models_dir / "checkpoints" / "xl").mkdir()
    write_sparse_safetensors(models_dir / "checkpoints" / "xl" / "header-only-sdxl.safetensors", sdxl_checkpoint())
    (models_dir / "checkpoints" / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    (models_dir / "presets").mkdir()
    (models_dir / "presets" / "fast.yaml").write_text("steps: 1\nsampler: euler\nwidth: 64\nheight: 64\n")
    (models_dir / "presets" / "bad.json").write_text("[1, 2]")
    (models_dir / "prompts").mkdir()
    (models_dir / "prompts" / "photo.txt").write_text("a photo of {prompt}, detailed")
    (models_dir / "neg_prompts").mkdir()
    (models_dir / "neg_prompts" / "clean.txt").write_text("blurry, {prompt}")
    server = Server(root, models_dir, "--model", "sd1").start()
    deadline = time.monotonic() + 30
    while (
        server.get("/api/v1/models").json()["total"] == 0 or server.status()["loaded_model"] != "sd1"
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    yield server
    server.stop()


def test_listing_filters_and_types(server: Server) -> None:
    everything = server.get("/api/v1/models").json()
    ids = {m["id"] for m in everything["models"]}
    assert {
        "checkpoint/sd1.safetensors",
        "checkpoint/xl/header-only-sdxl.safetensors",
        "lora/style.safetensors",
        "esrgan/x4.safetensors",
        "taesd/taesd.safetensors",
        "presets/fast.yaml",
    } <= ids
    loras = server.get("/api/v1/models", params={"type": "lora"}).json()["models"]
    assert [m["id"] for m in loras] == ["lora/style.safetensors"] and loras[0]["type_flag"] == 1
    masked = server.get("/api/v1/models", params={"type": "3"}).json()["models"]
    assert {m["type"] for m in masked} == {"lora", "checkpoint"}
    by_path = server.get("/api/v1/models/checkpoint").json()["models"]
    assert all(m["type"] == "checkpoint" for m in by_path) and len(by_path) == 4
    found = server.get("/api/v1/models", params={"search": "HEADER"}).json()["models"]
    assert [m["name"] for m in found] == ["xl/header-only-sdxl"] and found[0]["category"] == "xl"
    page = server.get("/api/v1/models", params={"limit": 2, "offset": 1}).json()
    assert len(page["models"]) == 2 and page["total"] == everything["total"]
    assert server.get("/api/v1/models", params={"type": "nope"}).status_code == 400
    # Files are named relative to their folder: no server path reaches a client.
    assert "path" not in loras[0] and loras[0]["relative_path"] == "style.safetensors"
    assert str(server.root) not in json.dumps(everything)


def test_details_detection_loaded_and_hashes(server: Server) -> None:
    sd1 = server.get("/api/v1/models/checkpoint/sd1.safetensors").json()
    assert sd1["detection"]["architecture"] == "sd1" and sd1["detection"]["variant"] == "tiny"
    assert sd1["loaded"] is True
    xl = server.get("/api/v1/models/checkpoint/xl/header-only-sdxl.safetensors").json()
    assert xl["detection"]["architecture"] == "sdxl" and xl["loaded"] is False
    broken = server.get("/api/v1/models/checkpoint/broken.safetensors").json()
    assert broken["detection"]["architecture"] == "unknown" and broken["detection"]["error"]
    # An <img src> on another site's page must not start gigabytes of hashing (--auth none: admin).
    for site in ("cross-site", "same-site"):
        refused = server.get(
            "/api/v1/models/lora/style.safetensors", params={"hashes": "true"}, headers={"Sec-Fetch-Site": site}
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "cross_site_refused"
        assert refused.json()["error"]["field"] == "hashes"
    assert server.get("/api/v1/models/lora/style.safetensors").json().get("sha256") is None  # nothing hashed
    hashed = server.get("/api/v1/models/lora/style.safetensors", params={"hashes": "true"}).json()
    assert len(hashed["sha256"]) == 64 and hashed["short_hash"] == hashed["sha256"][:10]
    again = server.get("/api/v1/models/lora/style.safetensors").json()
    assert again["sha256"] == hashed["sha256"]  # cached, shown without recomputing
    assert server.get("/api/v1/models/checkpoint/nope.safetensors").status_code == 404
    assert server.get("/api/v1/models/checkpoint/../../../etc/passwd").status_code == 404


def test_rescan_sees_added_and_removed_files(server: Server) -> None:
    extra = server.models_dir / "lora" / "added.safetensors"
    write_sparse_safetensors(extra, {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)})
    result = server.post("/api/v1/models/scan").json()
    assert result["counts"]["lora"] == 2
    assert server.get("/api/v1/models/lora/added.safetensors").status_code == 200
    extra.unlink()
    server.post("/api/v1/models/scan")
    assert server.get("/api/v1/models/lora/added.safetensors").status_code == 404


def test_load_swap_and_unload_through_the_queue(server: Server) -> None:
    loaded = server.post("/api/v1/models/load", json={"model": "sd1b", "wait": True}).json()
    assert loaded["status"] == "completed" and loaded["mode"] == "load_model"
    assert "loading" in loaded["timings"]
    assert server.status()["loaded_model"] == "sd1b"
    # A request without "model" uses what is loaded.
    assert server.submit(wait=True)["model"] == "sd1b"
    # Naming a model swaps to it, in queue order.
    assert server.submit(model="sd1", wait=True)["model"] == "sd1"
    assert server.status()["loaded_model"] == "sd1"
    unloaded = server.post("/api/v1/models/unload", json={"wait": True}).json()
    assert unloaded["status"] == "completed"
    assert server.status()["loaded_model"] is None
    # Nothing loaded: requests fall back to --model.
    assert server.submit(wait=True)["model"] == "sd1"


def test_corrupt_model_fails_its_load_and_keeps_the_previous_one(server: Server) -> None:
    server.submit(model="sd1", wait=True)
    failed = server.post("/api/v1/models/load", json={"model": "broken", "wait": True}).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "model_load_failed"
    assert failed["error"]["log"]
    assert server.status()["loaded_model"] == "sd1"
    assert server.submit(wait=True)["status"] == "completed"


def test_per_request_components_and_options(server: Server) -> None:
    plain = server.submit(model="sd1", seed=21, wait=True)
    tae = server.submit(model="sd1", seed=21, taesd="taesd", wait=True)
    assert tae["status"] == "completed"
    assert server.status()["loaded_model_options"]["taesd"] == "taesd.safetensors"
    a = _pixels(server, plain)
    b = _pixels(server, tae)
    assert np.abs(a - b).mean() > 1.0  # decoded by TAESD, not the VAE
    assert server.post("/api/v1/generate", json={**FAST, "vae": "nope"}).status_code == 404
    bad = server.post("/api/v1/generate", json={**FAST, "weight_type": "q9"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "weight_type"


def test_lora_tags_in_the_prompt(server: Server) -> None:
    tagged = server.submit(prompt="a red apple <lora:style:0.8>", seed=30, wait=True)
    assert tagged["parameters"]["loras"] == [{"name": "style", "weight": 0.8}]
    assert tagged["parameters"]["prompt"] == "a red apple"
    missing = server.post("/api/v1/generate", json={**FAST, "prompt": "x <lora:nope:1>"})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert missing.json()["error"]["field"] == "prompt"
    malformed = server.post("/api/v1/generate", json={**FAST, "prompt": "x <lora:style:lots>"})
    assert malformed.status_code == 422


def test_presets_and_templates(server: Server) -> None:
    listed = server.get("/api/v1/presets").json()["presets"]
    fast = next(p for p in listed if p["name"] == "fast")
    assert fast["fields"]["steps"] == 1
    assert next(p for p in listed if p["name"] == "bad")["error"]
    job = server.post(
        "/api/v1/generate",
        json={
            "prompt": "cat",
            "preset": "fast",
            "steps": 2,
            "prompt_template": "photo",
            "negative_prompt_template": "clean",
            "negative_prompt": "text",
        },
    ).json()
    params = job["parameters"]
    assert params["steps"] == 2 and params["sampler"] == "euler" and params["width"] == 64
    assert params["prompt"] == "a photo of cat, detailed"
    assert params["negative_prompt"] == "blurry, text"
    server.wait_job(job["job_id"])
    assert server.post("/api/v1/generate", json={"prompt": "x", "preset": "nope"}).status_code == 404
    assert server.post("/api/v1/generate", json={"prompt": "x", "preset": "bad"}).status_code == 422
    assert server.post("/api/v1/generate", json={"prompt": "x", "preset": "../prompts/photo"}).status_code == 400
    templates = server.get("/api/v1/prompts").json()["templates"]
    assert {(t["kind"], t["name"]) for t in templates} == {("prompts", "photo"), ("neg_prompts", "clean")}
    one = server.get("/api/v1/prompts/prompts/photo").json()
    assert one["template"] == "a photo of {prompt}, detailed"


def test_load_requests_are_validated(server: Server) -> None:
    assert server.post("/api/v1/models/load", json={}).status_code == 422
    assert server.post("/api/v1/models/load", json={"model": "../../x"}).status_code == 400
    assert server.post("/api/v1/models/load", json={"model": "nope"}).status_code == 404
    assert server.post("/api/v1/models/load", json={"model": "sd1", "colour": 1}).status_code == 400


def _pixels(server: Server, job: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(server.get(job["images"][0]["url"]).content)), dtype=float)


def _write_embedding(path, vectors: int = 2, seed: int = 5) -> None:
    """A textual-inversion embedding: one [vectors, 768] tensor (CLIP-L's hidden size)."""
    import json
    import struct

    data = (np.random.default_rng(seed).standard_normal((vectors, 768)) * 0.5).astype(np.float16).tobytes()
    header = json.dumps(
        {"emb_params": {"dtype": "F16", "shape": [vectors, 768], "data_offsets": [0, len(data)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_embeddings_from_the_folder_are_used_in_prompts(server: Server) -> None:
    before = server.submit(model="sd1", prompt="a shinytoken apple", seed=40, wait=True)
    _write_embedding(server.models_dir / "embeddings" / "shinytoken.safetensors")
    try:
        server.post("/api/v1/models/scan")
        listed = server.get("/api/v1/models/embedding").json()["models"]
        assert [m["name"] for m in listed] == ["shinytoken"]
        after = server.submit(model="sd1", prompt="a shinytoken apple", seed=40, wait=True)
        assert server.status()["loaded_model_options"]["embeddings"] == ["shinytoken"]
        assert np.abs(_pixels(server, before) - _pixels(server, after)).mean() > 0.5
    finally:
        (server.models_dir / "embeddings" / "shinytoken.safetensors").unlink()
        server.post("/api/v1/models/scan")
