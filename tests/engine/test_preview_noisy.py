"""preview_noisy reaches sd_set_preview_callback: the library then sends the noisy latent
(is_noisy true) instead of the denoised estimate."""

from __future__ import annotations


def _noisy_flags(sd1, **options) -> set[bool]:
    flags: set[bool] = set()
    sd1.txt2img(
        "a red apple",
        width=64,
        height=64,
        steps=2,
        sampler="euler",
        seed=4,
        on_preview=lambda _step, _frames, noisy: flags.add(noisy),
        preview_mode="proj",
        **options,
    )
    return flags


def test_previews_are_denoised_unless_noisy_is_asked_for(sd1) -> None:
    assert _noisy_flags(sd1) == {False}
    assert _noisy_flags(sd1, preview_noisy=True) == {True}
