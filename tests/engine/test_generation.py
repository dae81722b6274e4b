"""Real generations with the native library on the synthetic SD1 model."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from helpers import SIZE, assert_real_image, pixels, test_image
from sdrest.engine import Context, Lora, VideoGenParams
from sdrest.errors import GenerationError

pytestmark = pytest.mark.slow

FAST = {"width": SIZE, "height": SIZE, "steps": 1, "sampler": "euler"}


def test_txt2img_gives_a_real_image_of_the_requested_size(sd1) -> None:
    result = sd1.txt2img("a red apple", **{**FAST, "width": 64, "height": 128}, seed=1)
    assert len(result.images) == 1
    assert_real_image(result.images[0], (64, 128))
    assert result.seeds == [1]


def test_the_library_aligns_sizes_up_to_the_models_multiple(sd1) -> None:
    # A UNet model needs multiples of 64 (VAE factor 8 x three down-samplings); the library
    # pads the request up and says so, and the engine reports the real size.
    result = sd1.txt2img("a red apple", **{**FAST, "width": 64, "height": 72}, seed=1)
    assert result.images[0].size == (64, 128)
    assert any("align generation request up 64x72 to 64x128" in line for line in result.warnings)


def test_same_seed_same_pixels_other_seed_other_pixels(sd1) -> None:
    first = sd1.txt2img("a red apple", **FAST, seed=7).images[0]
    again = sd1.txt2img("a red apple", **FAST, seed=7).images[0]
    other = sd1.txt2img("a red apple", **FAST, seed=8).images[0]
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_random_seed_is_reported_and_reproduces(sd1) -> None:
    result = sd1.txt2img("a red apple", **FAST, seed=-1)
    (seed,) = result.seeds
    assert 0 <= seed < 2**31 and result.params.seed == seed
    again = sd1.txt2img("a red apple", **FAST, seed=seed)
    assert again.images[0].tobytes() == result.images[0].tobytes()


def test_batch_gives_one_seed_per_image(sd1) -> None:
    result = sd1.txt2img("a red apple", **FAST, seed=20, batch_count=2)
    assert result.seeds == [20, 21]
    assert len(result.images) == 2
    assert result.images[0].tobytes() != result.images[1].tobytes()


def test_progress_and_preview_callbacks_reach_python(sd1) -> None:
    progress: list[tuple[int, int]] = []
    previews: list[tuple[int, list[Image.Image]]] = []
    sd1.txt2img(
        "a red apple",
        **{**FAST, "steps": 2},
        seed=3,
        on_progress=lambda step, steps, _t: progress.append((step, steps)),
        on_preview=lambda step, frames, _noisy: previews.append((step, frames)),
        preview_mode="proj",
    )
    assert (2, 2) in progress
    assert previews and all(isinstance(f, Image.Image) for _, frames in previews for f in frames)
    assert previews[0][1][0].size == (SIZE // 8, SIZE // 8)  # latent-space projection


def test_native_log_lines_reach_python_logging(sd1, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="sdrest.native"):
        sd1.txt2img("a red apple", **FAST, seed=3)
    assert any("generate_image" in r.getMessage() for r in caplog.records)


def test_img2img_changes_the_image_and_strength_matters(sd1) -> None:
    source = test_image()
    weak = sd1.img2img(source, "a red apple", strength=0.2, **{**FAST, "steps": 4}, seed=5).images[0]
    strong = sd1.img2img(source, "a red apple", strength=0.9, **{**FAST, "steps": 4}, seed=5).images[0]
    assert_real_image(weak, (SIZE, SIZE))
    assert weak.tobytes() != source.tobytes()
    assert weak.tobytes() != strong.tobytes()


def test_img2img_resizes_the_init_image_to_the_requested_size(sd1) -> None:
    result = sd1.img2img(test_image(96), "a red apple", strength=0.5, **FAST, seed=5)
    assert_real_image(result.images[0], (SIZE, SIZE))


def test_inpaint_uses_the_mask(sd1) -> None:
    source = test_image()
    full = Image.new("L", source.size, 255)
    half = Image.new("L", source.size, 0)
    half.paste(255, (0, 0, SIZE // 2, SIZE))
    a = sd1.inpaint(source, full, "a red apple", **FAST, seed=11).images[0]
    b = sd1.inpaint(source, half, "a red apple", **FAST, seed=11).images[0]
    assert_real_image(b, (SIZE, SIZE))
    assert a.tobytes() != b.tobytes()


def test_lora_changes_the_output(sd1, models) -> None:
    plain = sd1.txt2img("a red apple", **FAST, seed=4).images[0]
    with_lora = sd1.txt2img("a red apple", **FAST, seed=4, loras=[Lora(path=models.lora, multiplier=1.0)])
    assert_real_image(with_lora.images[0], (SIZE, SIZE))
    difference = np.abs(pixels(plain) - pixels(with_lora.images[0])).mean()
    assert difference > 0.5, difference
    # LoRAs are applied per generation (at run time by default, never merged into the
    # weights): the next plain one is exactly the plain image again.
    assert sd1.txt2img("a red apple", **FAST, seed=4).images[0].tobytes() == plain.tobytes()


def test_lora_in_prompt_needs_a_real_file(sd1, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"loras\[0\]"):
        sd1.txt2img("a red apple", **FAST, loras=[Lora(path=tmp_path / "nope.safetensors")])


def test_taesd_decoder(sd1, models, native) -> None:
    plain = sd1.txt2img("a red apple", **FAST, seed=2).images[0]
    with Context(model_path=models.checkpoint, taesd_path=models.taesd, n_threads=2) as context:
        image = context.txt2img("a red apple", **FAST, seed=2).images[0]
    assert_real_image(image, (SIZE, SIZE))
    # Same latent, another decoder: the pixels differ (an ignored taesd_path gives the plain image).
    assert np.abs(pixels(plain) - pixels(image)).mean() > 1.0


def test_video_generation_on_an_image_model_fails_cleanly(sd1) -> None:
    assert sd1.supports_image_generation and not sd1.supports_video_generation
    with pytest.raises(GenerationError):
        sd1.generate_video(VideoGenParams(prompt="x", width=SIZE, height=SIZE, video_frames=1))
    # ... and the context still works afterwards.
    assert_real_image(sd1.txt2img("a red apple", **FAST, seed=1).images[0], (SIZE, SIZE))


def test_merged_lora_mode_is_available_too(models, native) -> None:
    with Context(model_path=models.checkpoint, lora_apply_mode="immediately", n_threads=2) as context:
        plain = context.txt2img("a red apple", **FAST, seed=4).images[0]
        merged = context.txt2img("a red apple", **FAST, seed=4, loras=[Lora(path=models.lora)]).images[0]
    assert np.abs(pixels(plain) - pixels(merged)).mean() > 0.5
