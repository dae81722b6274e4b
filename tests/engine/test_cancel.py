"""Context.cancel: sd_cancel_generation (our patch of the pinned library) called from another
thread stops a real generation within one sampling step, and the context stays usable."""

from __future__ import annotations

import threading

import pytest

from helpers import SIZE, assert_real_image
from sdrest.engine import Context
from sdrest.errors import GenerationCancelled

pytestmark = pytest.mark.slow

FAST = {"width": SIZE, "height": SIZE, "sampler": "euler", "seed": 5}


def _cancel_at(context: Context, at_step: int, mode: str, steps_seen: list[int]):
    """A progress handler that, at ``at_step``, cancels from another thread (and waits for it)."""

    def on_progress(step: int, _steps: int, _seconds: float) -> None:
        if step > 0:
            steps_seen.append(step)
        if step == at_step:
            _from_another_thread(context, mode)

    return on_progress


def _from_another_thread(context: Context, mode: str) -> None:
    other = threading.Thread(target=context.cancel, args=(mode,))
    other.start()
    other.join()


def test_cancel_from_another_thread_stops_at_the_next_step_and_the_model_stays(sd1) -> None:
    seen: list[int] = []
    with pytest.raises(GenerationCancelled):
        sd1.txt2img("a red apple", **FAST, steps=20, on_progress=_cancel_at(sd1, 1, "all", seen))
    # Step 1 finished while the cancel was made; step 2 never ran.
    assert seen == [1]
    after = sd1.txt2img("a red apple", **FAST, steps=1)
    assert_real_image(after.images[0], (SIZE, SIZE))
    assert not after.cancelled


def test_new_latents_finishes_the_image_being_sampled_and_skips_the_rest(sd1) -> None:
    seen: list[int] = []
    result = sd1.txt2img(
        "a red apple", **FAST, steps=1, batch_count=3, on_progress=_cancel_at(sd1, 1, "new_latents", seen)
    )
    assert len(result.images) == 1 and result.seeds == [5]
    assert result.cancelled
    assert seen == [1]
    # The one image is the batch's first: the same pixels as that seed alone.
    alone = sd1.txt2img("a red apple", **FAST, steps=1)
    assert result.images[0].tobytes() == alone.images[0].tobytes()


def test_a_cancel_with_nothing_running_does_not_touch_the_next_generation(sd1) -> None:
    sd1.cancel("all")
    result = sd1.txt2img("a red apple", **FAST, steps=1)
    assert len(result.images) == 1 and not result.cancelled


def test_reset_withdraws_a_request(sd1) -> None:
    # A cancel after the last step would still stop the decoding; withdrawn, it does not.
    def on_progress(step: int, _steps: int, _seconds: float) -> None:
        if step == 1:
            sd1.cancel("all")
            sd1.cancel("reset")

    result = sd1.txt2img("a red apple", **FAST, steps=1, on_progress=on_progress)
    assert len(result.images) == 1 and not result.cancelled


def test_a_cancel_after_the_last_step_stops_the_decoding(sd1) -> None:
    with pytest.raises(GenerationCancelled):
        sd1.txt2img("a red apple", **FAST, steps=1, on_progress=_cancel_at(sd1, 1, "all", []))


def test_repeated_cancels_leave_the_context_working(sd1) -> None:
    # Each cancel lands as the library starts (its first log line), before any sampling step.
    def on_log(_level: int, line: str) -> None:
        if "generate_image" in line:
            _from_another_thread(sd1, "all")

    for attempt in range(10):
        seen: list[int] = []
        with pytest.raises(GenerationCancelled):
            sd1.txt2img(
                "a red apple",
                **{**FAST, "seed": attempt},
                steps=20,
                on_log=on_log,
                on_progress=lambda step, _steps, _s: seen.append(step) if step > 0 else None,  # noqa: B023
            )
        assert seen == []
    assert_real_image(sd1.txt2img("a red apple", **FAST, steps=1).images[0], (SIZE, SIZE))


def test_bad_mode_is_refused_naming_the_field(sd1) -> None:
    with pytest.raises(ValueError, match="mode: unknown value 'later'"):
        sd1.cancel("later")


def test_cancel_on_a_closed_context_does_nothing(models, native) -> None:
    context = Context(model_path=models.checkpoint, native=native, n_threads=2)
    context.close()
    context.cancel("all")
    assert context.closed
