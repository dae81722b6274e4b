"""The auth store backends every store test runs against: an SQLite file and a real PostgreSQL
database (a fresh one per test, tests/postgres_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth_helpers import AuthBackend
from postgres_helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def auth_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AuthBackend:
    if request.param == "sqlite":
        return AuthBackend("sqlite", tmp_path / "auth.sqlite3")
    return AuthBackend("postgresql", request.getfixturevalue("postgres_url"))
