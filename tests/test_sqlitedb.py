"""sdrest.sqlitedb: the connection, transactions and migrations the three stores share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sdrest.errors import SdrestError
from sdrest.sqlitedb import USER_VERSION, Database, VersionTable


class Closed(SdrestError):
    pass


class TooNew(SdrestError):
    pass


def _open(path: Path) -> Database:
    return Database(path, closed_error=lambda: Closed("closed"))


def _too_new(found: int, known: int) -> TooNew:
    return TooNew(f"{found} > {known}")


STEPS = (("CREATE TABLE a (x INTEGER)",), ("ALTER TABLE a ADD COLUMN y TEXT", "CREATE INDEX a_y ON a (y)"))


@pytest.mark.parametrize("ledger", [USER_VERSION, VersionTable()], ids=["user_version", "table"])
def test_migrations_run_once_in_order_and_refuse_a_newer_file(tmp_path: Path, ledger) -> None:
    db = _open(tmp_path / "sub" / "x.db")  # the folder is created
    assert db.wal
    assert db.migrate(STEPS[:1], ledger=ledger, too_new=_too_new) == [1]
    assert db.migrate(STEPS, ledger=ledger, too_new=_too_new) == [2]
    assert db.migrate(STEPS, ledger=ledger, too_new=_too_new) == []
    db.execute("INSERT INTO a (x, y) VALUES (1, 'one')")
    with pytest.raises(TooNew, match="2 > 1"):
        db.migrate(STEPS[:1], ledger=ledger, too_new=_too_new)
    assert db.query("SELECT x, y FROM a") == [(1, "one")]  # left untouched
    db.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    db = _open(tmp_path / "x.db")
    broken = (*STEPS, ("CREATE TABLE b (z)", "NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(broken, ledger=USER_VERSION, too_new=_too_new)
    assert db.query("SELECT name FROM sqlite_master WHERE type = 'table'") == []
    assert db.query("PRAGMA user_version") == [(0,)]


def test_every_open_statements_reach_files_already_at_the_version(tmp_path: Path) -> None:
    db = _open(tmp_path / "x.db")
    db.migrate(STEPS[:1], ledger=USER_VERSION, too_new=_too_new)
    later = ("CREATE TABLE IF NOT EXISTS extra (k)",)
    assert db.migrate(STEPS[:1], ledger=USER_VERSION, too_new=_too_new, every_open=later) == []
    assert ("extra",) in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")


def test_write_commits_or_rolls_back_and_close_is_final(tmp_path: Path) -> None:
    db = _open(tmp_path / "x.db")
    db.migrate(STEPS, ledger=USER_VERSION, too_new=_too_new)
    with db.write() as cursor:
        cursor.execute("INSERT INTO a (x) VALUES (1)")
    with pytest.raises(RuntimeError), db.write() as cursor:
        cursor.execute("INSERT INTO a (x) VALUES (2)")
        raise RuntimeError("undo")
    other = _open(tmp_path / "x.db")  # another connection sees only what was committed
    assert other.query("SELECT x FROM a") == [(1,)]
    db.close()
    db.close()
    assert db.closed
    with pytest.raises(Closed):
        db.query("SELECT 1")
    other.close()


def test_memory_and_bad_settings() -> None:
    db = _open(":memory:")
    assert not db.wal and db.path == ":memory:"
    db.close()
    with pytest.raises(ValueError, match="synchronous"):
        Database(":memory:", closed_error=lambda: Closed("closed"), synchronous="sometimes")


def test_a_database_locked_beyond_its_busy_timeout_is_unavailable_and_recovers(tmp_path: Path) -> None:
    from sdrest.errors import StoreUnavailable

    class Unavailable(StoreUnavailable):
        pass

    path = tmp_path / "x.db"
    db = Database(
        path, closed_error=lambda: Closed("closed"), busy_timeout=0.05, what="the x store", unavailable=Unavailable
    )
    plain = Database(path, closed_error=lambda: Closed("closed"), busy_timeout=0.05)
    db.execute("CREATE TABLE a (x INTEGER)")
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable) as locked, db.write() as cursor:
            cursor.execute("INSERT INTO a VALUES (1)")
        assert (
            locked.value.public
            == "the x store is unavailable: its database is locked by another process; try again shortly"
        )
        assert str(locked.value) == "the x store is unavailable: database is locked for more than 0.05 s"
        with pytest.raises(Unavailable):
            db.execute("INSERT INTO a VALUES (2)")
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # without an error class: SQLite's own
            plain.execute("INSERT INTO a VALUES (3)")
        assert db.query("SELECT COUNT(*) FROM a") == [(0,)]  # readers go on (WAL)
        other.execute("COMMIT")
        with db.write() as cursor:
            cursor.execute("INSERT INTO a VALUES (4)")
        assert db.query("SELECT x FROM a") == [(4,)]
    finally:
        other.close()
        db.close()
        plain.close()


def test_the_job_and_auth_stores_raise_their_own_unavailable_errors(tmp_path: Path) -> None:
    from sdrest.auth.store import AuthStore, AuthStoreError, AuthStoreUnavailable
    from sdrest.errors import StoreUnavailable
    from sdrest.jobs import JobStoreError, JobStoreUnavailable, SqliteJobStore

    jobs = SqliteJobStore(tmp_path / "jobs.db", busy_timeout=0.05)
    auth = AuthStore(tmp_path / "auth.db", busy_timeout=0.05)
    blockers = [sqlite3.connect(tmp_path / name, isolation_level=None) for name in ("jobs.db", "auth.db")]
    try:
        for blocker in blockers:
            blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(JobStoreUnavailable) as job_error:
            jobs.create("txt2img", {})
        with pytest.raises(AuthStoreUnavailable) as auth_error:
            auth.add_user("alice", "a long enough password", "user")
        assert str(job_error.value) == "the job store is unavailable: database is locked for more than 0.05 s"
        assert str(auth_error.value) == "the auth store is unavailable: database is locked for more than 0.05 s"
        # Both are what callers of each store already catch, and what the API answers with 503.
        assert isinstance(job_error.value, JobStoreError) and isinstance(job_error.value, StoreUnavailable)
        assert isinstance(auth_error.value, AuthStoreError) and isinstance(auth_error.value, StoreUnavailable)
        for blocker in blockers:
            blocker.execute("COMMIT")
        assert jobs.create("txt2img", {}).status.value == "queued"
        assert auth.add_user("alice", "a long enough password", "user").name == "alice"
    finally:
        for blocker in blockers:
            blocker.close()
        jobs.close()
        auth.close()
