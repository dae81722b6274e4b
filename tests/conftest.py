"""Shared fixtures: the real native library and synthetic models (built once, cached).

The synthetic models are random-weight files with the real tensor names and shapes
(:mod:`sdrest.synthetic`), written once into ``$SDREST_CACHE_DIR/synthetic`` (default
``~/.cache/sdrest/synthetic``) and reused by later runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from helpers import nvidia_driver
from sdrest._native import NativeLibrary, load_library
from sdrest.synthetic import SyntheticModels, ensure_synthetic_models

if TYPE_CHECKING:
    from postgres_helpers import PostgresCluster


@pytest.fixture(scope="session")
def native() -> NativeLibrary:
    return load_library()


@pytest.fixture(scope="session")
def models() -> SyntheticModels:
    return ensure_synthetic_models()


@pytest.fixture(scope="session")
def sd1(models: SyntheticModels, native: NativeLibrary) -> Iterator:
    """One loaded SD1 context shared by the generation tests (loading takes seconds)."""
    from sdrest.engine import Context

    # img2img and inpainting need the VAE encoder, so keep it (vae_decode_only=False).
    with Context(model_path=models.checkpoint, vae_decode_only=False, n_threads=2) as context:
        yield context


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One real PostgreSQL server for the session (tests/postgres_helpers.py)."""
    # Imported here: psycopg is needed only where a test uses PostgreSQL (the GPU machine lacks it).
    from postgres_helpers import PostgresCluster

    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database of that server, dropped after the test."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run where an NVIDIA driver is present and are skipped elsewhere (the
    only skips CI allows)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_tests and not nvidia_driver():
        skip = pytest.mark.skip(reason="gpu: needs an NVIDIA GPU and driver")
        for item in gpu_tests:
            item.add_marker(skip)
