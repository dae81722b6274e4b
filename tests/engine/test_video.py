"""Context.generate_video on the synthetic Wan2.1-T2V-1.3B (Q2_K GGUF) with its TAEHV: a cancel
from another thread (here from the log callback, as the worker's) stops it in place."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sdrest.engine import Context, GuidanceParams, SampleParams, VideoGenParams
from sdrest.errors import GenerationCancelled
from sdrest.synthetic import ensure_synthetic_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wan(native) -> Iterator[Context]:
    models = ensure_synthetic_models(with_video=True)
    with Context(
        diffusion_model_path=models.wan, taesd_path=models.wan_taehv, vae_decode_only=False, n_threads=2
    ) as context:
        yield context


def _params(steps: int) -> VideoGenParams:
    # One latent frame (Wan makes 4k+1 frames), 64x64, no CFG: the cheapest real call.
    sample = SampleParams(sample_steps=steps, sample_method="euler", guidance=GuidanceParams(txt_cfg=1.0))
    return VideoGenParams(prompt="a boat", width=64, height=64, video_frames=1, seed=3, sample_params=sample)


def test_cancel_from_another_thread_stops_a_video_before_it_samples(wan: Context) -> None:
    """The frames of a real run: tests/api/test_video_api.py (through the worker, same model)."""
    assert wan.supports_video_generation and not wan.supports_image_generation
    steps: list[int] = []

    def on_log(_level: int, line: str) -> None:
        if "get_learned_condition completed" in line:  # the prompt is encoded: sampling is next
            other = threading.Thread(target=wan.cancel, args=("all",))
            other.start()
            other.join()

    with pytest.raises(GenerationCancelled):
        wan.generate_video(_params(3), on_progress=lambda step, _steps, _s: steps.append(step), on_log=on_log)
    assert max(steps, default=0) < 3
