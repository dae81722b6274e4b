"""The job store backends every store test runs against: SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postgres_helpers import BACKENDS, Backend
from sdrest.jobs import JobStore


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path}/state/jobs.db")  # the store creates state/
    return Backend("postgresql", request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(backend: Backend) -> Iterator[JobStore]:
    job_store = backend.open()
    try:
        yield job_store
    finally:
        job_store.close()
