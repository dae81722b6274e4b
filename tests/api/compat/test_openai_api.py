"""The OpenAI images API through a real server, driven by the official ``openai`` SDK."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
import requests
from PIL import Image

from compat_helpers import compat_server, png_bytes
from helpers import test_image
from server_helpers import Server

pytestmark = pytest.mark.slow

NATIVE = {"steps": 1, "sampler": "euler", "seed": 5, "negative_prompt": "blurry"}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    server = compat_server(models, tmp_path_factory.mktemp("openai"))
    yield server
    server.stop()


@pytest.fixture()
def client(server: Server) -> openai.OpenAI:
    # --auth none: any key is accepted (the SDK insists on one).
    return openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=300)


def newest_job(server: Server) -> dict:
    return server.get("/api/v1/queue", params={"limit": 1}).json()["jobs"][0]


def test_images_generate_with_native_fields(server: Server, client: openai.OpenAI) -> None:
    result = client.images.generate(
        prompt="a lighthouse", size="64x64", n=2, model="dall-e-2", response_format="b64_json", extra_body=NATIVE
    )
    assert len(result.data) == 2 and result.size == "64x64" and result.output_format == "png"
    first, second = (Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in result.data)
    assert first.size == (64, 64) and first.text["parameters"].startswith("a lighthouse\nNegative prompt: blurry\n")
    assert "Seed: 5," in first.text["parameters"] and "Seed: 6," in second.text["parameters"]
    job = newest_job(server)
    assert job["mode"] == "txt2img" and job["parameters"]["steps"] == 1 and job["model"] == "sd1"


def test_images_generate_url_jpeg_and_model_by_name(server: Server, client: openai.OpenAI) -> None:
    result = client.images.generate(
        prompt="a boat",
        size="64x64",
        model="sd1b",
        response_format="url",
        output_format="jpeg",
        output_compression=70,
        quality="high",
        user="me",
        extra_body=NATIVE,
    )
    (image,) = result.data
    assert image.url.startswith(server.base + "/api/v1/jobs/")
    fetched = requests.get(image.url, timeout=30)
    assert fetched.headers["Content-Type"] == "image/jpeg"
    job = newest_job(server)
    assert job["model"] == "sd1b" and job["parameters"]["output_quality"] == 70


def test_images_edit_with_transparent_mask(server: Server, client: openai.OpenAI) -> None:
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # the transparent left half is edited
    result = client.images.edit(
        image=("init.png", png_bytes(test_image()), "image/png"),
        prompt="a door",
        mask=("mask.png", png_bytes(mask), "image/png"),
        size="64x64",
        extra_body=NATIVE,
    )
    (data,) = result.data
    assert Image.open(io.BytesIO(base64.b64decode(data.b64_json))).size == (64, 64)
    job = newest_job(server)
    assert job["mode"] == "inpaint" and job["parameters"]["negative_prompt"] == "blurry"
    newest = max((server.data_dir / "inputs").glob("*/mask_image.png"), key=lambda p: p.stat().st_mtime_ns)
    saved = np.asarray(Image.open(newest))
    assert (saved[:, :32] == 255).all() and (saved[:, 32:] == 0).all()  # sdrest's mask: white is repainted


def test_images_edit_uses_the_image_alpha_then_plain_img2img(server: Server, client: openai.OpenAI) -> None:
    holed = test_image().convert("RGBA")
    holed.paste((0, 0, 0, 0), (16, 16, 48, 48))
    client.images.edit(image=("holed.png", png_bytes(holed), "image/png"), prompt="a window", extra_body=NATIVE)
    job = newest_job(server)
    assert job["mode"] == "inpaint" and job["parameters"]["width"] == 64
    client.images.edit(
        image=("opaque.png", png_bytes(test_image()), "image/png"),
        prompt="a window",
        extra_body={**NATIVE, "strength": 0.4},
    )
    job = newest_job(server)
    assert job["mode"] == "img2img" and job["parameters"]["strength"] == 0.4


def test_images_edit_as_json(server: Server) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(test_image())).decode()
    response = server.post("/v1/images/edits", json={"prompt": "a roof", "images": [{"image_url": data_url}], **NATIVE})
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 1 and newest_job(server)["mode"] == "img2img"


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["sd1", "sd1b"]
    assert client.models.retrieve("sd1").owned_by == "sdrest"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")


def test_sdk_error_types(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad_size:
        client.images.generate(prompt="x", size="65x64", extra_body=NATIVE)
    assert bad_size.value.body["param"] == "size" and bad_size.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.images.generate(prompt="x", size="64x64", extra_body={"stepz": 3})
    assert unknown.value.body["param"] == "stepz" and unknown.value.body["code"] == "unknown_field"
    with pytest.raises(openai.BadRequestError) as transparent:
        client.images.generate(prompt="x", background="transparent")
    assert transparent.value.body["param"] == "background"
    with pytest.raises(openai.NotFoundError) as missing:
        client.images.generate(prompt="x", model="no-such-model")
    assert missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as sampler:
        client.images.generate(prompt="x", size="64x64", extra_body={"sampler": "nope"})
    assert sampler.value.body["param"] == "sampler"
