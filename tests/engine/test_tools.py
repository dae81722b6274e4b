"""Upscaler, convert and canny on real files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import SIZE, assert_real_image, pixels, test_image
from sdrest.engine import Context, Upscaler, canny, convert
from sdrest.errors import ModelLoadError

pytestmark = pytest.mark.slow


def test_esrgan_upscales_4x(models, native) -> None:
    with Upscaler(models.esrgan, n_threads=2) as upscaler:
        assert upscaler.scale == 4
        result = upscaler.upscale(test_image(32))
    assert_real_image(result, (128, 128))


def test_upscaler_errors(models, tmp_path, native) -> None:
    with pytest.raises(FileNotFoundError, match="model_path"):
        Upscaler(tmp_path / "missing.pth")
    with pytest.raises(ModelLoadError):
        Upscaler(models.lora)  # not an ESRGAN
    with Upscaler(models.esrgan, n_threads=2) as upscaler, pytest.raises(ValueError, match="factor"):
        upscaler.upscale(test_image(32), factor=0)


def test_convert_to_q8_0_gguf_loads_and_generates(models, tmp_path, native) -> None:
    output = convert(models.checkpoint, tmp_path / "model-q8_0.gguf", output_type="q8_0")
    assert output.read_bytes()[:4] == b"GGUF"
    # f16 -> 8.5 bits for the big matrices (small and 1-D tensors keep their type).
    assert output.stat().st_size < models.checkpoint.stat().st_size * 0.85
    with Context(model_path=output, n_threads=2) as context:
        image = context.txt2img("a red apple", width=SIZE, height=SIZE, steps=1, seed=3).images[0]
    assert_real_image(image, (SIZE, SIZE))


def test_convert_errors(models, tmp_path, native) -> None:
    with pytest.raises(FileNotFoundError, match="input_path"):
        convert(tmp_path / "missing.safetensors", tmp_path / "out.gguf")
    with pytest.raises(ValueError, match="output_type"):
        convert(models.checkpoint, tmp_path / "out.gguf", output_type="q9_9")


def test_canny_finds_edges(native) -> None:
    image = Image.new("RGB", (SIZE, SIZE), "black")
    image.paste((255, 255, 255), (16, 16, 48, 48))
    edges = canny(image)
    assert edges.size == image.size
    values = pixels(edges)
    assert values.max() > 0 and values.min() == 0
    # Edges lie on the square's border, not in its flat middle.
    assert values[30:34, 30:34].max() == 0
    assert values[14:19, 14:50].max() > 0
    with pytest.raises(ValueError, match="weak"):
        canny(image, weak="high")


def test_images_in_any_mode_are_accepted(native) -> None:
    edges = canny(Image.new("RGBA", (SIZE, SIZE)))
    assert edges.mode == "RGB"
    assert np.asarray(edges).shape == (SIZE, SIZE, 3)
