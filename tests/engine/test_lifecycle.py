"""Owning native objects: load errors, close, single-use contexts."""

from __future__ import annotations

import pytest

from helpers import SIZE
from sdrest.engine import Context
from sdrest.errors import ModelLoadError

pytestmark = pytest.mark.slow

FAST = {"width": SIZE, "height": SIZE, "steps": 1, "sampler": "euler"}


def test_corrupt_model_raises_model_load_error_with_library_lines(tmp_path, native) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\x00" * 64)
    with pytest.raises(ModelLoadError) as error:
        Context(model_path=garbage)
    assert error.value.log_lines, "the library's own error lines are carried"
    assert "garbage.safetensors" in str(error.value)


def test_truncated_model_raises_model_load_error(tmp_path, models, native) -> None:
    truncated = tmp_path / "truncated.safetensors"
    with open(models.checkpoint, "rb") as source:
        truncated.write_bytes(source.read(4 << 20))
    with pytest.raises(ModelLoadError):
        Context(model_path=truncated)


def test_not_a_checkpoint_raises_model_load_error(models, native) -> None:
    # A LoRA file holds no UNet: loading it as a model must fail cleanly.
    with pytest.raises(ModelLoadError):
        Context(model_path=models.lora)


def test_close_is_idempotent_and_final(models, native) -> None:
    context = Context(model_path=models.checkpoint, n_threads=2)
    with context:
        assert not context.closed
    assert context.closed
    context.close()
    with pytest.raises(ValueError, match="closed"):
        context.txt2img("x", **FAST)


def test_free_params_immediately_context_is_single_use(models, native) -> None:
    with Context(model_path=models.checkpoint, free_params_immediately=True, n_threads=2) as context:
        context.txt2img("x", **FAST, seed=1)
        with pytest.raises(ValueError, match="free_params_immediately"):
            context.txt2img("x", **FAST, seed=1)
