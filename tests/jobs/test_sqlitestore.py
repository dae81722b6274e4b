"""What only the SQLite backend has: the file, its WAL journal and pragmas, its schema ledger
(the shared semantics are in test_store_conformance.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sdrest.jobs import SCHEMA_VERSION, JobStoreError, SchemaVersionError, SqliteJobStore, open_store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "jobs.db"  # parent does not exist yet: the store creates it


def test_schema_wal_and_foreign_keys(db_path: Path) -> None:
    with SqliteJobStore(db_path) as store:
        assert db_path.exists()
        assert store.wal
        assert store.schema_version() == SCHEMA_VERSION
        with sqlite3.connect(db_path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert store._db.connection().execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_keeps_schema_and_refuses_newer_schema(db_path: Path) -> None:
    SqliteJobStore(db_path).close()
    with SqliteJobStore(db_path) as again:  # no second migration
        assert again.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(db_path) as raw:
        raw.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError):
        SqliteJobStore(db_path)


def test_progress_skips_the_fsync_and_restores_full_after(db_path: Path) -> None:
    with SqliteJobStore(db_path) as store:
        job = store.create("txt2img", {})
        store.claim_next()
        assert store.update_progress(job.id, step=1) is True
        assert store._db.connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again


def test_open_store_by_url(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}")
    try:
        assert isinstance(store, SqliteJobStore) and store.path == db_path
        job = store.create("txt2img", {"prompt": "by url"})
    finally:
        store.close()
    with SqliteJobStore(db_path) as same:
        assert same.get(job.id).params == {"prompt": "by url"}


def test_an_sqlite_older_than_3_35_is_refused_at_open_naming_both_versions(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shared SQL uses INSERT ... RETURNING (SQLite 3.35): an older library must fail at open,
    # with both versions named, not at the first job.
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(JobStoreError, match=r"SQLite 3\.35\.0 or newer.*has 3\.34\.1"):
        SqliteJobStore(db_path)
    assert not db_path.exists()
