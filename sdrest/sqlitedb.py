"""The SQLite plumbing shared by the job store, the auth store and the hash cache.

*One connection, guarded by one lock* (``check_same_thread=False`` plus ``threading.Lock``),
rather than a connection per thread: SQLite allows one writer at a time anyway, a Python lock
hands the connection over without ``SQLITE_BUSY`` polling, and Waitress's threads come and go
(per-thread connections would leak and could not be closed). ``isolation_level=None``: no
implicit transactions, each one is begun and committed here explicitly.

*WAL journal* for files: readers never block the writer, and a commit is one append to the log.
Write transactions use ``BEGIN IMMEDIATE``, so another process on the same file is serialised
by SQLite itself.

*Locked beyond the busy timeout*: another process holding the write lock longer than
``busy_timeout`` makes SQLite give up with "database is locked". A database given an
``unavailable`` error class raises that instead (a :class:`~sdrest.errors.StoreUnavailable`:
the API answers 503, a worker tries again), logged once per episode
(:class:`~sdrest.outage.Outage`).

*Migrations* are lists of statements (no ``executescript``: it would commit the transaction the
migration runs in), applied in one write transaction; where the version is kept is the
caller's choice (:data:`USER_VERSION` or a :class:`VersionTable`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from sdrest.errors import StoreUnavailable
from sdrest.outage import Outage

MEMORY = ":memory:"
#: SQLite's messages for SQLITE_BUSY and SQLITE_LOCKED (sqlite_errorcode needs Python 3.11).
_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")

#: Migrations: for each schema version, the statements that lead to it from the one before.
Migrations = Sequence[Sequence[str]]


class Ledger(Protocol):
    """Where a database records its schema version."""

    def read(self, cursor: sqlite3.Cursor) -> int: ...

    def record(self, cursor: sqlite3.Cursor, version: int) -> None: ...


class _UserVersion:
    """SQLite's own ``PRAGMA user_version``."""

    def read(self, cursor: sqlite3.Cursor) -> int:
        return int(cursor.execute("PRAGMA user_version").fetchone()[0])

    def record(self, cursor: sqlite3.Cursor, version: int) -> None:
        cursor.execute(f"PRAGMA user_version={int(version)}")


USER_VERSION: Ledger = _UserVersion()


class VersionTable:
    """A ``schema_version (version, applied_at)`` table: also says when each step ran."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def read(self, cursor: sqlite3.Cursor) -> int:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ( version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        return int(cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)

    def record(self, cursor: sqlite3.Cursor, version: int) -> None:
        cursor.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, self._clock()))


class Database:
    """One SQLite connection and its lock (see the module docstring).

    ``path``: a file (its folder is created) or ``":memory:"``. ``closed_error`` builds the
    exception raised when the database is used after :meth:`close`. ``synchronous``: SQLite's
    setting for commits (``FULL`` survives power loss, ``NORMAL`` only process crashes).
    ``unavailable``: the error raised (for ``what``, "the job store") when the database stays
    locked beyond ``busy_timeout`` seconds; None: SQLite's own ``OperationalError``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        closed_error: Callable[[], Exception],
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
        foreign_keys: bool = False,
        what: str = "the database",
        unavailable: type[StoreUnavailable] | None = None,
    ) -> None:
        synchronous = synchronous.upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        self.path: str | Path = MEMORY if str(path) == MEMORY else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous
        self.lock = threading.Lock()
        self._what = what
        self._unavailable = unavailable
        self._busy_timeout = busy_timeout
        self._outage = Outage(what, str(self.path))
        self._closed_error = closed_error
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            #: Whether the WAL journal is on (never for ":memory:", which keeps its own).
            self.wal = str(mode).lower() == "wal"
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            if foreign_keys:
                self._conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def connection(self) -> sqlite3.Connection:
        """The open connection (hold :attr:`lock` while using it)."""
        if self._conn is None:
            raise self._closed_error()
        return self._conn

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Translate "database is locked" (after ``busy_timeout``) into ``unavailable``; for
        the caller's own statements on :meth:`connection` (under :attr:`lock`)."""
        if self._unavailable is None:
            yield
            return
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(_BUSY_MESSAGES):
                raise
            reason = f"{exc} for more than {self._busy_timeout:g} s"
            self._outage.failed(reason)
            public = "its database is locked by another process; try again shortly"
            raise self._unavailable(self._what, reason, public) from None
        self._outage.succeeded()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A snapshot for several SELECTs (a page and its total) that must agree."""
        with self.lock, self.guard():
            cursor = self.connection().cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction under the lock: committed on success, rolled back on any error.

        BEGIN IMMEDIATE takes SQLite's write lock up front, so a read-then-update cannot
        interleave with another connection's write.
        """
        with self.lock, self.guard():
            cursor = self.connection().cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if self.connection().in_transaction:  # COMMIT itself may fail (disk full)
                    cursor.execute("ROLLBACK")
                raise

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """All rows of one statement (outside any explicit transaction: autocommit)."""
        with self.lock, self.guard():
            return self.connection().execute(sql, tuple(args)).fetchall()

    def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one changing statement on its own (autocommit); returns the rows it changed."""
        with self.lock, self.guard():
            return self.connection().execute(sql, tuple(args)).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.lock, self.guard():
            self.connection().executemany(sql, rows)

    def migrate(
        self,
        migrations: Migrations,
        *,
        ledger: Ledger,
        too_new: Callable[[int, int], Exception],
        every_open: Sequence[str] = (),
    ) -> list[int]:
        """Bring the schema to ``len(migrations)`` in one transaction; returns the versions
        applied. A database at a higher version (written by a newer sdrest) raises
        ``too_new(found, known)`` and is left untouched. ``every_open``: idempotent statements
        (``CREATE ... IF NOT EXISTS``) run at every open, after the migrations."""
        known = len(migrations)
        applied = []
        with self.write() as cursor:
            current = ledger.read(cursor)
            if current > known:
                raise too_new(current, known)
            for version in range(current + 1, known + 1):
                for statement in migrations[version - 1]:
                    cursor.execute(statement)
                ledger.record(cursor, version)
                applied.append(version)
            for statement in every_open:
                cursor.execute(statement)
        return applied

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None
