"""image_metadata=false: the worker writes image files without the parameters in them (sd-cli's
--disable-image-metadata); the sidecar the server reads keeps them."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from sdrest.outputs import write_image


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_no_parameters_in_the_file_without_embed(tmp_path, fmt) -> None:
    image = Image.new("RGB", (16, 16), (200, 30, 40))
    path = write_image(image, tmp_path, "0", fmt=fmt, infotext="a cat\nSteps: 1", metadata={"seed": 5}, embed=False)
    written = Image.open(path)
    assert written.size == (16, 16)
    assert not set(written.info) & {"parameters", "sdrest", "exif", "xmp", "XML:com.adobe.xmp"}
    assert b"a cat" not in path.read_bytes() and b"Steps" not in path.read_bytes()
    assert json.loads(path.with_suffix(".json").read_text())["metadata"] == {"seed": 5}


def test_embedded_by_default(tmp_path) -> None:
    path = write_image(Image.new("RGB", (16, 16)), tmp_path, "0", infotext="a cat", metadata={"seed": 5})
    assert Image.open(path).info["parameters"] == "a cat" and b"a cat" in path.read_bytes()
