"""The PostgreSQL plumbing shared by the job store and the auth store (as :mod:`sdrest.sqlitedb`
is for SQLite): a connection pool, transactions, and versioned migrations.

*A pool, not one connection*: unlike SQLite, PostgreSQL runs transactions of many connections
at once, so each call borrows a connection for one statement or one explicit transaction and
threads never share one. The pool is psycopg-pool's, in autocommit mode (transactions are
opened explicitly), and checks a connection before lending it, so one the server dropped (a
restart, an idle timeout) is replaced rather than failing the call that gets it.

*The shared SQL's parameters*: the stores write their SQL once for both databases, with ``?``
marking a parameter (SQLite's style); :class:`PgCursor` hands it to psycopg as ``%s``. So that
SQL must not contain a literal ``?`` or ``%``.

*Migrations*: several nodes may start at once on an empty database, so a migration runs in one
transaction under a transaction-level advisory lock: the first node migrates, the others wait and
then find the schema current. Each store keeps its versions in its own ledger table; a database
at a version this code does not know (written by a newer sdrest) is refused, not touched.

This module needs the ``postgres`` extra (psycopg 3, psycopg-pool); import it only for a
``postgresql://`` URL.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sdrest.jobs.store import redact_url


class PgCursor:
    """A psycopg cursor that takes the shared SQL's ``?`` parameter marks (as ``%s``)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> PgCursor:
        self._cursor.execute(sql.replace("?", "%s"), tuple(args))
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class PgDatabase:
    """A pool of connections to one PostgreSQL database (see the module docstring).

    ``what`` names the store in messages ("the job store"); ``error(message)`` builds the
    exception for a database that cannot be reached or used after :meth:`close`. The URL's
    password never appears in a message: :attr:`url` is redacted.
    """

    def __init__(
        self,
        url: str,
        *,
        what: str,
        error: Callable[[str], Exception],
        pool_name: str,
        pool_size: int = 16,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = redact_url(url)
        self._what = what
        self._error = error
        self._closed = False
        try:  # one plain connection first: libpq's reason (refused, bad password, no database)
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))).close()
        except psycopg.Error as exc:
            raise error(f"cannot connect to {what} at {self.url}: {str(exc).strip()}") from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            name=pool_name,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise error(f"cannot connect to {what} at {self.url} within {connect_timeout:g} s") from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool (autocommit), for as long as the block runs."""
        if self._closed:
            raise self._error(f"{self._what} is closed")
        with self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[PgCursor]:
        """A snapshot for several SELECTs (a page and its total) that must agree."""
        with self.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PgCursor(cursor)

    @contextlib.contextmanager
    def write(self) -> Iterator[PgCursor]:
        """A transaction: committed on success, rolled back on any exception."""
        with self.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield PgCursor(cursor)

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """All rows of one statement (autocommit)."""
        with self.connection() as conn, conn.cursor() as cursor:
            return PgCursor(cursor).execute(sql, tuple(args)).fetchall()

    def migrate(
        self,
        migrations: Sequence[Sequence[str]],
        *,
        ledger: str,
        lock: int,
        too_new: Callable[[int, int], Exception],
        clock: Callable[[], float] = time.time,
    ) -> list[int]:
        """Bring the schema to ``len(migrations)`` in one transaction under the advisory lock
        ``lock``, recording each version in the table ``ledger`` (made if missing); returns the
        versions applied. A database at a higher version raises ``too_new(found, known)``."""
        known = len(migrations)
        applied = []
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {ledger} (version INTEGER PRIMARY KEY,"
                " applied_at DOUBLE PRECISION NOT NULL)"
            )
            row = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {ledger}").fetchone()
            current = int(row[0]) if row else 0
            if current > known:
                raise too_new(current, known)
            for version in range(current + 1, known + 1):
                for statement in migrations[version - 1]:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {ledger} (version, applied_at) VALUES (%s, %s)", (version, clock()))
                applied.append(version)
        return applied

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        self._closed = True
        self._pool.close()

    @property
    def closed(self) -> bool:
        return self._closed
