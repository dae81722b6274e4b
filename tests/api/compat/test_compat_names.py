"""A1111's sampler and scheduler names map onto sdrest's, and nothing is guessed."""

from __future__ import annotations

import pytest

from sdrest.api.compat.names import sampler_name, scheduler_name
from sdrest.api.errors import ApiError

SAMPLERS = ["euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "lcm", "ddim_trailing"]
SCHEDULERS = ["discrete", "karras", "exponential", "ays", "sgm_uniform", "simple"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Euler a", ("euler_a", None)),
        ("euler a", ("euler_a", None)),
        ("Euler", ("euler", None)),
        ("DPM++ 2M", ("dpm++2m", None)),
        ("DPM++ 2M Karras", ("dpm++2m", "karras")),
        ("DPM++ 2S a Karras", ("dpm++2s_a", "karras")),
        ("DPM2 Exponential", ("dpm2", "exponential")),
        ("DDIM", ("ddim_trailing", None)),
        ("dpm++2m", ("dpm++2m", None)),
        ("euler_a", ("euler_a", None)),
    ],
)
def test_sampler_names(given: str, expected: tuple[str, str | None]) -> None:
    assert sampler_name(given, SAMPLERS, SCHEDULERS) == expected


@pytest.mark.parametrize("given", ["UniPC", "DPM++ SDE", "DPM++ 2M Sometimes", "", "Karras"])
def test_unknown_samplers_are_errors_naming_the_field(given: str) -> None:
    with pytest.raises(ApiError) as error:
        sampler_name(given, SAMPLERS, SCHEDULERS)
    assert error.value.status == 422 and error.value.field == "sampler_name"
    assert "Euler a" in error.value.message  # the valid names, in A1111's spelling


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Karras", "karras"),
        ("karras", "karras"),
        ("Automatic", None),
        ("automatic", None),
        ("Align Your Steps", "ays"),
        ("align_your_steps", "ays"),
        ("SGM Uniform", "sgm_uniform"),
    ],
)
def test_scheduler_names(given: str, expected: str | None) -> None:
    assert scheduler_name(given, SCHEDULERS) == expected


def test_unknown_scheduler_is_an_error() -> None:
    with pytest.raises(ApiError) as error:
        scheduler_name("Beta", SCHEDULERS)
    assert error.value.field == "scheduler" and "Karras" in error.value.message
