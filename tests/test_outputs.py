"""sdrest.infotext and sdrest.outputs: A1111 infotext, image files with embedded parameters, thumbnails."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

import sdrest
from helpers import test_image
from sdrest.infotext import infotext, parse_infotext
from sdrest.outputs import (
    THUMBNAIL_SIZES,
    discard_job_outputs,
    job_thumbnail,
    read_parameters,
    thumbnail,
    write_image,
)

VERSION = sdrest.__version__

PARAMS = {
    "prompt": "a photo of a cat",
    "negative_prompt": "blurry, low quality",
    "steps": 20,
    "sampler": "dpm++2m",
    "scheduler": "karras",
    "cfg_scale": 7.0,
    "width": 512,
    "height": 768,
    "clip_skip": 2,
}


# ------------------------------------------------------------------------------------ infotext


def test_infotext_matches_a1111_layout() -> None:
    text = infotext(PARAMS, seed=123, model_name="v1-5-pruned-emaonly", model_hash="6ce0161689")
    assert text == (
        "a photo of a cat\n"
        "Negative prompt: blurry, low quality\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, "
        f"Version: sdrest {VERSION}"
    )


def test_infotext_img2img_hires_and_loras() -> None:
    params = {
        "prompt": "castle",
        "steps": 30,
        "sampler": "euler_a",
        "cfg_scale": 7.5,
        "width": 512,
        "height": 512,
        "clip_skip": 1,
        "hires": {"enabled": True, "scale": 2.0, "steps": 10, "upscaler": "Latent", "denoising_strength": 0.55},
        "loras": [{"name": "/models/lora/detail.safetensors", "weight": 0.8}, ("style", 1.0)],
    }
    text = infotext(params, seed=42)
    assert text == (
        "castle <lora:detail:0.8> <lora:style:1>\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Denoising strength: 0.55, "
        f"Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Version: sdrest {VERSION}"
    )
    # img2img strength wins over the hires denoise; disabled hires leaves no trace; a LoRA the
    # prompt already names is not repeated
    text = infotext(
        {
            "prompt": "x <lora:style:0.5>",
            "strength": 0.3,
            "sampler": "somethingnew",
            "scheduler": "ays",
            "hires": {"enabled": False, "scale": 2},
            "loras": {"style": 0.5},
        },
        seed=1,
    )
    assert (
        text == f"x <lora:style:0.5>\nSampler: somethingnew, Schedule type: Align Your Steps, Seed: 1, "
        f"Denoising strength: 0.3, Version: sdrest {VERSION}"
    )


@pytest.mark.parametrize(
    ("sampler", "label"),
    [
        ("euler_a", "Euler a"),
        ("euler", "Euler"),
        ("dpm++2s_a", "DPM++ 2S a"),
        ("dpm++2mv2", "DPM++ 2M v2"),
        ("ipndm_v", "iPNDM_v"),
        ("ddim_trailing", "DDIM"),
        ("res_2s", "Res 2s"),
        ("er_sde", "ER SDE"),
    ],
)
def test_sampler_labels(sampler: str, label: str) -> None:
    assert parse_infotext(infotext({"sampler": sampler, "steps": 1}, seed=0))["Sampler"] == label


def test_infotext_quotes_like_a1111() -> None:
    text = infotext({"prompt": "p", "steps": 4}, seed=5, model_name='my, "model": v2', model_hash="abc")
    params_line = text.splitlines()[-1]
    # json.dumps quoting (A1111's quote()); the line still splits into the right pairs
    assert 'Model: "my, \\"model\\": v2"' in params_line
    assert parse_infotext(text)["Model"] == 'my, "model": v2'
    assert parse_infotext(text)["Model hash"] == "abc"


def test_infotext_round_trip_with_hard_prompts() -> None:
    prompt = 'a "quoted" cat, sitting: on a mat\nsecond line, with (weights:1.2)\n<lora:x:0.5>'
    negative = "ugly, blurry\nbad hands: many"
    params = {**PARAMS, "prompt": prompt, "negative_prompt": negative}
    parsed = parse_infotext(infotext(params, seed=2**32 + 7, model_name="m:1", model_hash="h"))
    assert parsed["prompt"] == prompt
    assert parsed["negative_prompt"] == negative
    assert parsed["Seed"] == str(2**32 + 7)
    assert parsed["Size"] == "512x768"
    assert parsed["Model"] == "m:1"
    assert parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Version"] == f"sdrest {VERSION}"


def test_infotext_without_negative_or_prompt() -> None:
    text = infotext({"steps": 8, "cfg_scale": 1}, seed=9)
    assert "Negative prompt" not in text
    assert text == f"Steps: 8, CFG scale: 1, Seed: 9, Version: sdrest {VERSION}"
    parsed = parse_infotext(text)
    assert parsed["prompt"] == "" and parsed["negative_prompt"] == "" and parsed["Steps"] == "8"


def test_parse_reads_a1111_text() -> None:
    a1111 = (
        "masterpiece, 1girl\nNegative prompt: lowres\nSteps: 28, Sampler: DPM++ 2M, Schedule type: Karras, "
        "CFG scale: 7, Seed: 1, Size: 512x768, Model hash: 6ce0161689, Model: anything, "
        'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
    )
    parsed = parse_infotext(a1111)
    assert parsed["prompt"] == "masterpiece, 1girl"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed["Version"] == "v1.10.1"


# ------------------------------------------------------------------------------------ writing

META = {"id": "job-1", "seed": 123, "params": {"prompt": "ünïcødé ✓", "steps": 20}}


def test_png_has_parameters_and_sdrest_chunks(tmp_path: Path) -> None:
    text = infotext({**PARAMS, "prompt": "ünïcødé ✓ prompt"}, seed=1)
    path = write_image(test_image(), tmp_path / "out", "img-0001", infotext=text, metadata=META)
    assert path == tmp_path / "out" / "img-0001.png"
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.text["parameters"] == text
        assert json.loads(im.text["sdrest"]) == META
    assert read_parameters(path) == (text, META)
    sidecar = json.loads((tmp_path / "out" / "img-0001.json").read_text("utf-8"))
    assert sidecar == {"infotext": text, "metadata": META}
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img-0001.json", "img-0001.png"]


@pytest.mark.parametrize(
    ("fmt", "ext", "pil_format"), [("jpeg", ".jpg", "JPEG"), ("jpg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP")]
)
def test_jpeg_webp_exif_user_comment(tmp_path: Path, fmt: str, ext: str, pil_format: str) -> None:
    text = infotext({**PARAMS, "prompt": '日本語, "quotes"\nline 2'}, seed=3)
    rgba = test_image().convert("RGBA")
    path = write_image(rgba, tmp_path, "pic", fmt=fmt, quality=80, infotext=text, metadata=META)
    assert path.name == f"pic{ext}"
    with Image.open(path) as im:
        assert im.format == pil_format
        assert im.size == (64, 64)
        comment = im.getexif().get_ifd(0x8769)[0x9286]
        xmp = im.info.get("xmp")
    # A1111/piexif encoding: b"UNICODE\0" + UTF-16 big-endian
    assert comment == b"UNICODE\x00" + text.encode("utf-16-be")
    assert xmp and b"sdrest" in xmp
    assert read_parameters(path) == (text, META)
    # the sidecar alone is enough too
    assert json.loads((tmp_path / "pic.json").read_text("utf-8"))["infotext"] == text


def test_read_parameters_falls_back_to_sidecar(tmp_path: Path) -> None:
    path = write_image(
        test_image(), tmp_path, "a", fmt="jpeg", infotext="hello\nSteps: 1, Seed: 2, Size: 3x4", metadata={"k": 1}
    )
    with Image.open(path) as im:  # strip all metadata, as many tools do
        im.save(path, format="JPEG")
    assert read_parameters(path) == ("hello\nSteps: 1, Seed: 2, Size: 3x4", {"k": 1})


def test_jpeg_quality_changes_size(tmp_path: Path) -> None:
    image = test_image(256)
    low = write_image(image, tmp_path, "low", fmt="jpeg", quality=5, infotext="x", metadata={})
    high = write_image(image, tmp_path, "high", fmt="jpeg", quality=100, infotext="x", metadata={})
    assert low.stat().st_size < high.stat().st_size


def test_overwrite_is_atomic_replace(tmp_path: Path) -> None:
    first = write_image(test_image(seed=1), tmp_path, "same", infotext="one", metadata={"n": 1})
    second = write_image(test_image(seed=2), tmp_path, "same", infotext="two", metadata={"n": 2})
    assert first == second
    assert read_parameters(second) == ("two", {"n": 2})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["gif", "tiff", "", "PNG ", None])
def test_bad_format(tmp_path: Path, fmt: object) -> None:
    with pytest.raises(ValueError, match="output_format"):
        write_image(test_image(), tmp_path, "x", fmt=fmt, infotext="", metadata={})  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("quality", [0, 101, -5, 50.5, True, "90"])
def test_bad_quality(tmp_path: Path, quality: object) -> None:
    with pytest.raises(ValueError, match="output_quality"):
        write_image(
            test_image(),
            tmp_path,
            "x",
            fmt="jpeg",
            quality=quality,  # type: ignore[arg-type]
            infotext="",
            metadata={},
        )


@pytest.mark.parametrize("stem", ["../evil", "a/b", "a\\b", "..", ".", ".hidden", "", "x\0y", "a..b", "/abs"])
def test_bad_stem(tmp_path: Path, stem: str) -> None:
    with pytest.raises(ValueError):
        write_image(test_image(), tmp_path / "d", stem, infotext="", metadata={})
    assert not list(tmp_path.rglob("*.png"))


def test_uppercase_format_accepted(tmp_path: Path) -> None:
    path = write_image(test_image(), tmp_path, "u", fmt="WEBP", infotext="x", metadata={})
    assert path.suffix == ".webp"


# ------------------------------------------------------------------------------------ thumbnails


def test_thumbnail_size_and_cache(tmp_path: Path) -> None:
    source = write_image(test_image(200).resize((200, 100)), tmp_path, "wide", infotext="x", metadata={})
    cache = tmp_path / "cache"
    thumb = thumbnail(source, 50, cache)
    assert thumb.parent == cache
    with Image.open(thumb) as im:
        assert im.size == (50, 25)
        assert im.format == "JPEG"
    mtime = thumb.stat().st_mtime_ns
    time.sleep(0.01)
    again = thumbnail(source, 50, cache)
    assert again == thumb
    assert again.stat().st_mtime_ns == mtime  # served from the cache, not re-encoded
    other = thumbnail(source, 32, cache)
    assert other != thumb
    with Image.open(other) as im:
        assert max(im.size) == 32
    # a rewritten source (new mtime) gets a new thumbnail
    write_image(test_image(300), tmp_path, "wide", infotext="x", metadata={})
    os.utime(source, ns=(mtime + 10**9, mtime + 10**9))
    fresh = thumbnail(source, 50, cache)
    assert fresh != thumb
    with Image.open(fresh) as im:
        assert im.size == (50, 50)


def test_thumbnail_keeps_alpha_as_png(tmp_path: Path) -> None:
    rgba = test_image(100).convert("RGBA")
    rgba.putalpha(128)
    source = write_image(rgba, tmp_path, "alpha", infotext="x", metadata={})
    thumb = thumbnail(source, 16, tmp_path / "c")
    with Image.open(thumb) as im:
        assert im.format == "PNG" and im.mode == "RGBA" and im.size == (16, 16)


@pytest.mark.parametrize("size", [0, 15, 1025, 64.0, True])
def test_thumbnail_bad_size(tmp_path: Path, size: object) -> None:
    source = write_image(test_image(), tmp_path, "s", infotext="x", metadata={})
    with pytest.raises(ValueError, match="size"):
        thumbnail(source, size, tmp_path / "c")  # type: ignore[arg-type]


def test_job_thumbnails_come_in_a_few_sizes_and_live_with_the_job(tmp_path: Path) -> None:
    job_dir = tmp_path / "outputs" / "job-1"
    source = write_image(test_image(1024), job_dir, "0", infotext="x", metadata={})
    sizes = {}
    for requested in range(16, 1025, 7):  # a client walking through every size
        with Image.open(job_thumbnail(source, requested, job_dir)) as im:
            sizes[requested] = max(im.size)
    assert set(sizes.values()) <= set(THUMBNAIL_SIZES)
    assert all(sizes[r] >= r for r in sizes)  # never smaller than asked
    cached = list((job_dir / ".thumbnails").iterdir())
    assert 0 < len(cached) <= len(THUMBNAIL_SIZES)
    assert not (tmp_path / "thumbnails").exists()  # nothing outside the job's folder


def test_discard_job_outputs_removes_only_that_jobs_folder(tmp_path) -> None:
    outputs = tmp_path / "outputs"
    for name in ("job-a", "job-b"):
        (outputs / name).mkdir(parents=True)
        (outputs / name / "0.png").write_bytes(b"x")
    discard_job_outputs(outputs, "job-a")
    assert sorted(p.name for p in outputs.iterdir()) == ["job-b"]
    discard_job_outputs(outputs, "job-a")  # already gone: nothing to do


@pytest.mark.parametrize("job_id", ["..", "../outputs-other", "a/b", ""])
def test_discard_job_outputs_refuses_anything_but_a_plain_name(tmp_path, job_id) -> None:
    outputs = tmp_path / "outputs"
    (outputs / "a" / "b").mkdir(parents=True)
    (tmp_path / "outputs-other").mkdir()
    with pytest.raises(ValueError, match="plain name"):
        discard_job_outputs(outputs, job_id)
    assert (outputs / "a" / "b").is_dir() and (tmp_path / "outputs-other").is_dir()
