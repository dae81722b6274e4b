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
