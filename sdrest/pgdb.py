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

*An outage* (the server down or restarting, a network cut, every connection busy for longer
than ``wait_timeout``) raises the store's :class:`~sdrest.errors.StoreUnavailable`, so an API
node answers 503 and a worker waits, instead of a 500 with a traceback. It is logged once, when
it begins and when it ends (:class:`~sdrest.outage.Outage`); psycopg-pool keeps reconnecting in
the background meanwhile, so the node recovers by itself. A call waiting for a connection gives
up early when the pool failed to connect meanwhile (the server refuses connections), and while
the database is known to be down it waits at most :data:`OUTAGE_WAIT`: requests fail fast
rather than each holding an HTTP thread for the whole ``wait_timeout``.

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
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from sdrest.errors import StoreUnavailable
from sdrest.jobs.store import redact_url
from sdrest.outage import Outage

#: The longest a call waits for a pooled connection while the database is known to be down:
#: long enough to take one the pool has just made again (it keeps trying in the background).
OUTAGE_WAIT = 0.2
#: How long psycopg-pool keeps retrying one lost connection (with a backoff that doubles from
#: 1 s) before it gives that attempt up and starts a new one on demand: it bounds the pause
#: between attempts, hence how long a node may take to notice that the database is back.
RECONNECT_LIMIT = 10.0
#: How often a call waiting for a connection looks whether the pool failed to connect meanwhile.
_WAIT_SLICE = 0.5
#: What a client is told when the database does not answer (the reason, with hosts, is logged).
_PUBLIC_REASON = "its database does not answer; try again shortly"


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
        wait_timeout: float = 10.0,
        unavailable: type[StoreUnavailable] = StoreUnavailable,
    ) -> None:
        self.url = redact_url(url)
        self._what = what
        self._error = error
        self._unavailable = unavailable
        self._wait = wait_timeout
        self._password = _password(url)
        self._probe_url = url
        self._outage = Outage(what, self.url)
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
            # connect_timeout: a reconnection to a server that does not answer (a network cut)
            # fails in time, rather than after libpq's default of minutes.
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            check=ConnectionPool.check_connection,
            timeout=wait_timeout,
            reconnect_timeout=RECONNECT_LIMIT,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise error(f"cannot connect to {what} at {self.url} within {connect_timeout:g} s") from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool (autocommit), for as long as the block runs; the store's
        :class:`~sdrest.errors.StoreUnavailable` if the database cannot be reached or the
        connection is lost meanwhile (see the module docstring)."""
        if self._closed:
            raise self._error(f"{self._what} is closed")
        conn = None
        try:
            conn = self._borrow()
            with conn:  # as the pool's own connection(): commit, or roll back on an error
                yield conn
        except psycopg.OperationalError as exc:
            if self._closed or not _lost(exc):
                raise
            raise self._outage_error(exc) from None
        finally:
            if conn is not None:
                self._pool.putconn(conn)
        self._outage.succeeded()

    def _borrow(self) -> psycopg.Connection[Any]:
        """A pooled connection, waiting up to ``wait_timeout`` (:data:`OUTAGE_WAIT` while the
        database is known to be down); ``PoolTimeout`` sooner if the pool fails to connect
        meanwhile: the server refuses connections, so waiting longer is no use."""
        start = time.monotonic()
        deadline = start + (min(self._wait, OUTAGE_WAIT) if self._outage.down else self._wait)
        failures = self._connect_failures()
        while True:
            try:
                return self._pool.getconn(timeout=max(0.01, min(_WAIT_SLICE, deadline - time.monotonic())))
            except PoolTimeout:
                if time.monotonic() >= deadline or self._connect_failures() > failures:
                    raise PoolTimeout(f"no connection within {time.monotonic() - start:.1f} s") from None

    def _connect_failures(self) -> int:
        return self._pool.get_stats().get("connections_errors", 0)

    def _outage_error(self, exc: psycopg.OperationalError) -> StoreUnavailable:
        """The error for a lost database, its outage noted (logged if it is a new one)."""
        reason = _first_line(exc)
        if isinstance(exc, PoolTimeout) and not self._outage.down:
            # libpq's reason, once per outage; if a connection can be made, the pool is exhausted
            reason = self._probe() or f"every pooled connection stayed busy: {reason} (a larger pool?)"
        reason = reason.replace(self._password, "***") if self._password else reason
        self._outage.failed(reason)
        return self._unavailable(self._what, reason, _PUBLIC_REASON)

    def _probe(self) -> str | None:
        """Why a new connection fails (None if one can be made)."""
        try:
            psycopg.connect(self._probe_url, connect_timeout=2).close()
        except psycopg.Error as exc:
            return _first_line(exc)
        return None

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


def _lost(exc: psycopg.OperationalError) -> bool:
    """Whether ``exc`` means the database is out of reach, rather than a statement's failure:
    no connection in time, a connection lost (libpq's own errors carry no SQLSTATE), or the
    server's classes 08 (connection exception), 53 (insufficient resources: too many
    connections, out of memory or disk) and 57P (shut down, crashed, starting up)."""
    state = exc.sqlstate
    return isinstance(exc, PoolTimeout) or state is None or state.startswith(("08", "53", "57P"))


def _first_line(exc: BaseException) -> str:
    """The first line of libpq's message (the rest is hints), or the error's type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _password(url: str) -> str | None:
    """The URL's password (from the user part or a ``password=`` parameter), to keep it out of
    messages; None if it has none."""
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return None
    return str(password) if password else None
