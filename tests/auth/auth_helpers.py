"""The auth tests' helpers: where a store test's data lives (an SQLite file or a real PostgreSQL
database), and ``sdrest users|keys`` run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from sdrest.auth.store import AuthStore
from sdrest.sqlitedb import Database

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Tr0ub4dor&3-secret"


def sdrest(
    *args: str, data_dir: Path | None = None, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for name in ("SDREST_CONFIG", "SDREST_DATA_DIR", "SDREST_STORE"):
        base.pop(name, None)
    env = {**base, **(env or {})}
    extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "sdrest.cli", *args, *extra],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(REPO),
    )


def no_secret(result: subprocess.CompletedProcess[str], secret: str = PASSWORD) -> None:
    assert secret not in result.stdout and secret not in result.stderr


def add_user_with_key(store_url: str, data_dir: Path, name: str = "alice") -> str:
    """``sdrest users add NAME`` (password :data:`PASSWORD`, role user) and ``sdrest keys create``
    for a key NAME owns, both on the PostgreSQL store at *store_url*, each a separate process,
    as an admin would on any machine; the key."""
    added = sdrest("users", "add", name, "--password-stdin", "--store", store_url, data_dir=data_dir, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
    no_secret(added)
    created = sdrest(
        "keys", "create", "--name", "ci", "--role", "user", "--owner", name, "--store", store_url, data_dir=data_dir
    )
    assert created.returncode == 0, created.stderr
    assert "not a local user" not in created.stderr  # the owner was found in the same database
    (key,) = created.stdout.split()  # alone on standard output
    return key


#: Every table of the auth store (what :meth:`AuthBackend.dump` reads).
TABLES = ("users", "api_keys", "revoked_tokens", "auth_attempts", "token_generations", "rotated_tokens", "auth_secrets")


class AuthBackend:
    """Where one test's auth store lives. :meth:`open` gives another store on the same data, as
    another process (a CLI, a second node) would have; :meth:`rows` reads it behind the store's
    back, as an attacker with the file or the database would."""

    def __init__(self, name: str, where: str | Path) -> None:
        self.name = name
        self.where = where

    def open(self, clock: Callable[[], float] | None = None) -> AuthStore:
        return AuthStore(self.where, **({} if clock is None else {"clock": clock}))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.name == "sqlite":
            database = Database(self.where, closed_error=RuntimeError)
            try:
                return database.query(sql)
            finally:
                database.close()
        with psycopg.connect(str(self.where)) as conn:
            return conn.execute(sql).fetchall()

    def dump(self) -> bytes:
        """Everything stored, as bytes: the SQLite file and its side files (the store closed),
        or every row of every auth table as PostgreSQL prints it."""
        if self.name == "sqlite":
            path = Path(self.where)
            return b"".join(part.read_bytes() for part in path.parent.glob(path.name + "*"))
        with psycopg.connect(str(self.where)) as conn:
            return "\n".join(
                str(row[0]) for table in TABLES for row in conn.execute(f"SELECT t::text FROM {table} t").fetchall()
            ).encode()
