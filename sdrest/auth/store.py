"""The authentication store: local users, API keys, revoked JWT ids, token generations, the
audit log of authentication attempts, and (for a shared store) the token signing secret.

Where it lives follows ``--store`` (:func:`location`):

* the embedded default: one SQLite file, ``<data_dir>/auth.sqlite3``, separate from the job
  database: credentials have a different lifetime and a different audience than jobs (an
  operator may wipe jobs but must never lose the users), and a separate file can be kept at mode
  0600 without affecting anything else. It is created 0600 before SQLite opens it, and SQLite
  gives its ``-wal``/``-shm`` side files the same mode. Concurrency follows
  :mod:`sdrest.sqlitedb`: one connection, one lock, WAL, ``BEGIN IMMEDIATE`` for writes, so a
  CLI process working on the same file while the server runs is serialised by SQLite itself;
* ``--store postgresql://...``: its own tables in that database (:mod:`sdrest.pgdb`: a pool,
  migrations under an advisory lock in the ``auth_schema_version`` ledger), so every node that
  shares the database accepts the same users, keys and tokens, and a revocation on one node
  is refused by all of them at once (nothing here is cached between requests).

Both run the same SQL (``?`` parameters); the dialects differ only in their DDL and in what
orders keys created in the same instant (SQLite's ``rowid``, PostgreSQL's ``seq``).

Secrets:

* passwords are stored as scrypt hashes (:mod:`sdrest.auth.passwords`);
* API keys are 32 random bytes, so a fast SHA-256 is enough (nothing to brute-force) and lets
  :meth:`AuthStore.check_key` find the row by an indexed hash lookup; only the hash and an
  8-character display prefix are stored, the plaintext is returned once by
  :meth:`AuthStore.create_key`;
* every comparison of secret material uses :func:`hmac.compare_digest`.

Timestamps are POSIX seconds (floats, UTC), like the job store's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sdrest.auth import passwords
from sdrest.errors import SdrestError, StoreUnavailable
from sdrest.jobs.eventlog import Cursor
from sdrest.jobs.store import is_postgres_url, redact_url
from sdrest.sqlitedb import USER_VERSION, Database

if TYPE_CHECKING:
    from sdrest.settings import Settings

#: The store's file name inside the data folder.
DB_NAME = "auth.sqlite3"
ROLES = ("admin", "user", "guest")
OUTCOMES = ("success", "failure", "throttled")
#: The shared identity of every anonymous visitor with --auth optional; no account may take it.
GUEST_NAME = "guest"
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
KEY_PREFIX = "sdr_"
#: How many leading characters of a key are stored in clear, to tell keys apart in listings.
DISPLAY_PREFIX_CHARS = 8
_KEY_RANDOM_BYTES = 32
#: Longest audit field kept (usernames and reasons can come from clients).
_AUDIT_FIELD_CHARS = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,            -- BINARY collation: case-sensitive
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    created_at    REAL NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
    owner      TEXT,
    key_hash   TEXT NOT NULL UNIQUE,           -- sha256 hex of the plaintext key
    prefix     TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys (prefix);
CREATE INDEX IF NOT EXISTS api_keys_owner ON api_keys (owner);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_tokens_expiry ON revoked_tokens (expires_at);
CREATE TABLE IF NOT EXISTS auth_attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL NOT NULL,
    method    TEXT NOT NULL,
    username  TEXT,
    client_ip TEXT,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'throttled')),
    reason    TEXT
);
CREATE INDEX IF NOT EXISTS auth_attempts_username ON auth_attempts (username, id);
-- Per-user token generation (local and unix/pam names alike): tokens carry the generation they
-- were issued under, and bumping it (password, role or group change, revoke-sessions, a reused
-- refresh token) revokes every older token of that user at once.
CREATE TABLE IF NOT EXISTS token_generations (
    name       TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
-- Refresh tokens replaced by a newer one: presenting one again means it was stolen.
CREATE TABLE IF NOT EXISTS rotated_tokens (
    jti        TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    rotated_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_attempts_time ON auth_attempts (time);
-- Secrets every node sharing the store must agree on: the token signing secret of a
-- PostgreSQL store (an SQLite store's stays a file in the data folder). No semicolons in
-- comments here: the schema is split into statements at each one.
CREATE TABLE IF NOT EXISTS auth_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

#: The schema's versions (``PRAGMA user_version``), each as its statements.
_MIGRATIONS = (tuple(statement for statement in _SCHEMA.split(";") if statement.strip()),)

# The same tables in PostgreSQL (DOUBLE PRECISION: its REAL is 4 bytes). Never edit a released
# migration; append a new one. api_keys.seq orders keys created in the same instant (SQLite's rowid).
_PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE users (
            name          TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role          TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
            created_at    DOUBLE PRECISION NOT NULL,
            disabled      INTEGER NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE api_keys (
            seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            id         TEXT PRIMARY KEY,
            name       TEXT NOT NULL,
            role       TEXT NOT NULL CHECK (role IN ('admin', 'user', 'guest')),
            owner      TEXT,
            key_hash   TEXT NOT NULL UNIQUE,
            prefix     TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        )
        """,
        "CREATE INDEX api_keys_prefix ON api_keys (prefix)",
        "CREATE INDEX api_keys_owner ON api_keys (owner)",
        "CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at)",
        """
        CREATE TABLE auth_attempts (
            id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time      DOUBLE PRECISION NOT NULL,
            method    TEXT NOT NULL,
            username  TEXT,
            client_ip TEXT,
            outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'throttled')),
            reason    TEXT
        )
        """,
        "CREATE INDEX auth_attempts_username ON auth_attempts (username, id)",
        "CREATE INDEX auth_attempts_time ON auth_attempts (time)",
        "CREATE TABLE token_generations (name TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
        """
        CREATE TABLE rotated_tokens (
            jti        TEXT PRIMARY KEY,
            name       TEXT NOT NULL,
            rotated_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )
        """,
        "CREATE TABLE auth_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
    ),
)

#: The PostgreSQL store's ledger of schema versions (the job store keeps its own).
_PG_LEDGER = "auth_schema_version"
#: pg_advisory_xact_lock key that serialises the auth migrations of nodes starting at once ("sdauth").
_PG_MIGRATION_LOCK = 0x736461757468
#: Connections a PostgreSQL auth store opens at most by default (``--auth-pool-size``; one per
#: HTTP thread checking credentials).
PG_POOL_SIZE = 8


class AuthStoreError(SdrestError):
    """The store cannot do what was asked (closed, or a newer schema)."""


class AuthStoreUnavailable(AuthStoreError, StoreUnavailable):
    """The auth store's database cannot be used for now (see :class:`~sdrest.errors.StoreUnavailable`)."""


class UserNotFoundError(AuthStoreError, LookupError):
    """No user has that name."""


class DuplicateUserError(AuthStoreError, ValueError):
    """A user with that name already exists."""


class AmbiguousKeyError(AuthStoreError, ValueError):
    """A key prefix matches more than one active key; use the key id instead."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: float
    disabled: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    owner: str | None
    prefix: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def active(self, now: float) -> bool:
        """Neither revoked nor expired at *now*."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def validate_username(name: str) -> str:
    """*name* itself if it is 1-64 of ``A-Z a-z 0-9 _ . @ -``; ValueError otherwise."""
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise ValueError("username must be 1-64 characters of A-Z a-z 0-9 _ . @ -")
    if name.casefold() == GUEST_NAME:
        raise ValueError(f"the name {GUEST_NAME!r} is reserved for anonymous visitors (--auth optional)")
    return name


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return role


def default_path(data_dir: str | Path) -> Path:
    """Where the embedded auth store lives: ``<data_dir>/auth.sqlite3``."""
    return Path(data_dir) / DB_NAME


def location(settings: Settings) -> str | Path:
    """Where the auth store of *settings* lives: the ``--store`` PostgreSQL database (its URL),
    else the data folder's SQLite file (also when an SQLite ``--store`` keeps the jobs elsewhere)."""
    if settings.store is not None and is_postgres_url(settings.store):
        return settings.store
    return default_path(settings.data_dir)


def hash_key(plaintext: str) -> str:
    """The stored form of an API key: SHA-256, hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


_USER_COLUMNS = "name, role, created_at, disabled"
_KEY_COLUMNS = "id, name, role, owner, prefix, created_at, expires_at, revoked_at"


def _user(row: tuple[Any, ...]) -> User:
    name, role, created_at, disabled = row
    return User(name=name, role=role, created_at=created_at, disabled=bool(disabled))


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(*row)


def _clip(value: str | None) -> str | None:
    # NUL, which a client can send in a user name, is replaced: PostgreSQL text cannot hold it.
    return None if value is None else str(value)[:_AUDIT_FIELD_CHARS].replace("\0", "\ufffd")


def _storable(value: object) -> bool:
    """Whether *value* could be a stored name or id at all (a string without NUL, which no row
    holds): other values are looked up as "not found" without asking the database."""
    return isinstance(value, str) and "\0" not in value


class _Database(Protocol):
    """What the store needs of its database: :class:`sdrest.sqlitedb.Database` or
    :class:`sdrest.pgdb.PgDatabase`."""

    def write(self) -> contextlib.AbstractContextManager[Cursor]: ...

    def query(self, sql: str, args: Iterable[Any] = ...) -> list[Any]: ...

    def close(self) -> None: ...


class AuthStore:
    """Users, API keys, JWT revocations and the audit log (thread-safe).

    ``where``: an SQLite file (a path), or a ``postgresql://`` URL (needs the ``postgres``
    extra; a password is better kept in ``~/.pgpass`` or ``PGPASSWORD`` than in the URL).
    :func:`location` says which one a server's settings use. ``busy_timeout``: how long a call
    waits for the database (SQLite's write lock, or a free pooled PostgreSQL connection) before
    it raises :class:`AuthStoreUnavailable`; ``pool_size``: the most PostgreSQL connections.
    """

    def __init__(
        self,
        where: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        pool_size: int = PG_POOL_SIZE,
    ) -> None:
        self._clock = clock
        self._dummy_hash: str | None = None
        #: The SQLite file (None for PostgreSQL).
        self.path: Path | None = None
        #: Where the store is, for messages: the file, or the URL without its password.
        self.where: str
        #: Whether other machines may share this store (PostgreSQL): its users, keys and
        #: revocations, and the token signing secret, are then the same on every node.
        self.shared = isinstance(where, str) and is_postgres_url(where)
        self._db: _Database
        #: Orders keys created in the same instant (their insertion order).
        self._key_order = "created_at, rowid"
        if self.shared:
            self._open_postgres(str(where), connect_timeout, busy_timeout, pool_size)
        else:
            self._open_sqlite(Path(where), busy_timeout)

    def _open_sqlite(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)
        database = Database(
            path,
            closed_error=lambda: AuthStoreError("the auth store is closed"),
            busy_timeout=busy_timeout,
            what="the auth store",
            unavailable=AuthStoreUnavailable,
        )
        self._db = database
        try:
            # Version 1 is applied again at every open: tables and indexes were added to it
            # (all IF NOT EXISTS) without a new version, and older files must get them too.
            database.migrate(_MIGRATIONS, ledger=USER_VERSION, too_new=self._too_new, every_open=_MIGRATIONS[0])
        except BaseException:
            database.close()
            raise

    def _open_postgres(self, url: str, connect_timeout: float, wait_timeout: float, pool_size: int) -> None:
        self.where = redact_url(url)
        self._key_order = "created_at, seq"
        try:
            from sdrest.pgdb import PgDatabase
        except ImportError as exc:
            raise AuthStoreError(
                f"a postgresql:// auth store needs the postgres extra (pip install 'sdrest[postgres]'): {exc}"
            ) from None
        database = PgDatabase(
            url,
            what="the auth store",
            error=AuthStoreError,
            pool_name="sdrest-auth",
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            wait_timeout=wait_timeout,
            unavailable=AuthStoreUnavailable,
        )
        self._db = database
        try:
            database.migrate(
                _PG_MIGRATIONS, ledger=_PG_LEDGER, lock=_PG_MIGRATION_LOCK, too_new=self._too_new, clock=self._clock
            )
        except BaseException:
            database.close()
            raise

    # -- plumbing -----------------------------------------------------------------------------

    def _too_new(self, found: int, known: int) -> AuthStoreError:
        return AuthStoreError(
            f"{self.where} has auth schema version {found}; this sdrest knows {known} (a newer sdrest wrote it)"
        )

    def _write(self) -> contextlib.AbstractContextManager[Cursor]:
        """One write transaction; committed on success, rolled back on error."""
        return self._db.write()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.query(sql, params)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AuthStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- users --------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, role: str = "user") -> User:
        """A new enabled user. ValueError for a bad name, role or password;
        :class:`DuplicateUserError` (a ValueError) if the name is taken."""
        validate_username(name)
        validate_role(role)
        encoded = passwords.hash_password(password)
        user = User(name=name, role=role, created_at=self._clock(), disabled=False)
        with self._write() as conn:
            added = conn.execute(
                "INSERT INTO users (name, password_hash, role, created_at, disabled) VALUES (?, ?, ?, ?, 0)"
                " ON CONFLICT (name) DO NOTHING",
                (name, encoded, role, user.created_at),
            ).rowcount
        if not added:
            raise DuplicateUserError(f"user {name!r} already exists")
        return user

    def get_user(self, name: str) -> User | None:
        if not _storable(name):
            return None
        rows = self._query(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [_user(row) for row in self._query(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]

    def _update_user(self, name: str, sql: str, params: tuple[Any, ...]) -> None:
        """Change *name*'s row and revoke its tokens (every change here is one of rights)."""
        with self._write() as conn:
            if conn.execute(sql, (*params, name)).rowcount == 0:
                raise UserNotFoundError(f"no user {name!r}")
            _bump(conn, name)

    def set_password(self, name: str, password: str) -> None:
        """Replace *name*'s password (ValueError if empty/too long, UserNotFoundError if unknown);
        the user's tokens are revoked."""
        encoded = passwords.hash_password(password)
        self._update_user(name, "UPDATE users SET password_hash = ? WHERE name = ?", (encoded,))

    def set_role(self, name: str, role: str) -> None:
        """Change *name*'s role; its tokens (which carry the old role) are revoked."""
        validate_role(role)
        self._update_user(name, "UPDATE users SET role = ? WHERE name = ?", (role,))

    def set_disabled(self, name: str, disabled: bool) -> None:
        """A disabled user keeps its row (and audit history) but can neither log in nor use
        the API keys it owns; its tokens are revoked."""
        self._update_user(name, "UPDATE users SET disabled = ? WHERE name = ?", (int(bool(disabled)),))

    def remove_user(self, name: str) -> None:
        """Delete *name*, revoke every API key it owns (a key must not outlive its owner) and
        every token issued to it."""
        with self._write() as conn:
            if conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise UserNotFoundError(f"no user {name!r}")
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL", (self._clock(), name)
            )
            _bump(conn, name)

    # -- sessions (token generations) ---------------------------------------------------------

    def token_generation(self, name: str) -> int:
        """The generation new tokens of *name* carry; older ones are revoked."""
        if not _storable(name):
            return 0
        rows = self._query("SELECT generation FROM token_generations WHERE name = ?", (name,))
        return rows[0][0] if rows else 0

    def revoke_sessions(self, name: str) -> int:
        """Revoke every token issued to *name* so far (any account kind); the new generation."""
        with self._write() as conn:
            return _bump(conn, name)

    def rotate_refresh_token(self, jti: str, name: str, expires_at: float) -> None:
        """*jti* was exchanged for a new refresh token: revoke it and remember why."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
                (jti, float(expires_at)),
            )
            conn.execute(
                "INSERT INTO rotated_tokens (jti, name, rotated_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (jti) DO NOTHING",
                (jti, name, self._clock(), float(expires_at)),
            )

    def rotated_at(self, jti: str) -> float | None:
        """When the refresh token *jti* was exchanged for a new one (None: never)."""
        if not _storable(jti):
            return None
        rows = self._query("SELECT rotated_at FROM rotated_tokens WHERE jti = ?", (jti,))
        return rows[0][0] if rows else None

    def _dummy(self) -> str:
        # Made on first use (one KDF run) rather than per store or per call.
        if self._dummy_hash is None:
            self._dummy_hash = passwords.hash_password(secrets.token_urlsafe(16))
        return self._dummy_hash

    def check_password(self, name: str, password: str) -> User | None:
        """The user if *password* is right and the user is enabled, else None.

        Exactly one KDF verification runs whether or not the user exists (an unknown name is
        checked against a dummy hash), so response time does not reveal which names exist.
        A hash made with outdated parameters is replaced after a successful check.
        """
        row: list[tuple[Any, ...]] = []
        if isinstance(name, str) and USERNAME_RE.fullmatch(name):
            row = self._query(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE name = ?", (name,))
        encoded = row[0][4] if row else self._dummy()
        ok = passwords.verify_password(password, encoded)
        if not row or not ok:
            return None
        user = _user(row[0][:4])
        if user.disabled:
            return None
        if passwords.needs_rehash(encoded):
            fresh = passwords.hash_password(password)
            with self._write() as conn:
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?", (fresh, name, encoded)
                )
        return user

    # -- API keys -----------------------------------------------------------------------------

    def create_key(
        self, name: str, role: str, owner: str | None = None, expires_at: float | None = None
    ) -> tuple[str, ApiKey]:
        """A new key: ``(plaintext, record)``. The plaintext (``sdr_`` + 43 urlsafe-base64
        characters) is returned only here; the store keeps its SHA-256 and display prefix.

        *owner* is a username (local, or a Unix/PAM account, so it need not exist in this
        store) or None for a service key not tied to a person.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise ValueError("key name must be 1-128 characters")
        validate_role(role)
        if owner is not None:
            validate_username(owner)
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise ValueError("expiry must be in the future")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)
        key = ApiKey(
            id=secrets.token_hex(6),
            name=name.strip(),
            role=role,
            owner=owner,
            prefix=plaintext[:DISPLAY_PREFIX_CHARS],
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, role, owner, key_hash, prefix, created_at,"
                " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    key.id,
                    key.name,
                    key.role,
                    key.owner,
                    hash_key(plaintext),
                    key.prefix,
                    key.created_at,
                    key.expires_at,
                ),
            )
        return plaintext, key

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked and expired ones included (oldest first); never the plaintext."""
        return [_key(row) for row in self._query(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY {self._key_order}")]

    def get_key(self, key_id: str) -> ApiKey | None:
        if not _storable(key_id):
            return None
        rows = self._query(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return _key(rows[0]) if rows else None

    def revoke_key(self, key_id_or_prefix: str) -> bool:
        """Revoke the active key with this id, or else the one active key with this display
        prefix. False if none matches (or it was already revoked);
        :class:`AmbiguousKeyError` if a prefix matches several active keys."""
        if not _storable(key_id_or_prefix):
            return False
        with self._write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM api_keys WHERE id = ? AND revoked_at IS NULL", (key_id_or_prefix,)
                ).fetchall()
            ]
            if not ids:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM api_keys WHERE prefix = ? AND revoked_at IS NULL", (key_id_or_prefix,)
                    ).fetchall()
                ]
            if len(ids) > 1:
                raise AmbiguousKeyError(f"{len(ids)} keys start with {key_id_or_prefix!r}; give the key id")
            if not ids:
                return False
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (self._clock(), ids[0]))
        return True

    def check_key(self, plaintext: str) -> ApiKey | None:
        """The key record if *plaintext* is a valid, unexpired, unrevoked key whose owner (if a
        local user) is not disabled; otherwise None. A local owner's key acts with the lower of
        its own role and the owner's current one: demoting a user demotes their keys (and a
        promotion back restores them), so a key never outranks the person it acts for."""
        if not isinstance(plaintext, str) or not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
            return None
        digest = hash_key(plaintext)
        rows = self._query(
            f"SELECT {_KEY_COLUMNS}, key_hash,"
            " (SELECT disabled FROM users WHERE users.name = api_keys.owner),"
            " (SELECT role FROM users WHERE users.name = api_keys.owner)"
            " FROM api_keys WHERE key_hash = ?",
            (digest,),
        )
        if not rows:
            return None
        *columns, stored, owner_disabled, owner_role = rows[0]
        if not hmac.compare_digest(stored.encode("ascii"), digest.encode("ascii")):
            return None
        key = _key(tuple(columns))
        if not key.active(self._clock()) or owner_disabled:
            return None
        if owner_role is not None and ROLES.index(owner_role) > ROLES.index(key.role):  # ROLES: highest first
            key = dataclasses.replace(key, role=owner_role)
        return key

    # -- JWT revocations ----------------------------------------------------------------------

    def revoke_token(self, jti: str, expires_at: float) -> None:
        """Remember that the token *jti* is revoked until it would expire anyway."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO UPDATE SET"
                " expires_at = CASE WHEN excluded.expires_at > revoked_tokens.expires_at"
                " THEN excluded.expires_at ELSE revoked_tokens.expires_at END",
                (jti, float(expires_at)),
            )

    def is_token_revoked(self, jti: str) -> bool:
        if not _storable(jti):
            return False
        return bool(self._query("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)))

    def purge_expired_revocations(self) -> int:
        """Forget revocations of tokens that have expired anyway; how many were dropped."""
        with self._write() as conn:
            now = self._clock()
            conn.execute("DELETE FROM rotated_tokens WHERE expires_at <= ?", (now,))
            return conn.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (now,)).rowcount

    # -- shared secrets -----------------------------------------------------------------------

    def shared_secret(self, name: str, make: Callable[[], str]) -> str:
        """The secret *name*, the same for every process using this store: made by ``make()``
        and kept the first time anyone asks, read ever after. Processes asking at once (nodes
        starting together) all get the one stored first: INSERT ... ON CONFLICT DO NOTHING waits
        for a concurrent insert of the same name to commit, then the SELECT reads the winner."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO auth_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, make(), self._clock()),
            )
        return str(self._query("SELECT value FROM auth_secrets WHERE name = ?", (name,))[0][0])

    # -- audit --------------------------------------------------------------------------------

    def record_attempt(
        self, method: str, username: str | None, client_ip: str | None, outcome: str, reason: str | None = None
    ) -> None:
        """Append one authentication attempt. Never pass secrets: the row is shown to admins."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO auth_attempts (time, method, username, client_ip, outcome, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (self._clock(), _clip(method), _clip(username), _clip(client_ip), outcome, _clip(reason)),
            )

    def attempts(self, limit: int = 100, offset: int = 0, username: str | None = None) -> list[dict[str, Any]]:
        """Recorded attempts, newest first, optionally only *username*'s."""
        limit = max(0, min(int(limit), 10_000))
        offset = max(0, int(offset))
        sql = "SELECT id, time, method, username, client_ip, outcome, reason FROM auth_attempts"
        params: tuple[Any, ...] = ()
        if username is not None:
            sql += " WHERE username = ?"
            params = (_clip(username),)  # as it was recorded
        rows = self._query(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        names = ("id", "time", "method", "username", "client_ip", "outcome", "reason")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def purge_attempts(self, older_than: float) -> int:
        """Drop audit rows recorded before *older_than* (POSIX seconds); how many went."""
        with self._write() as conn:
            return conn.execute("DELETE FROM auth_attempts WHERE time < ?", (older_than,)).rowcount


def _bump(conn: Cursor, name: str) -> int:
    """Raise *name*'s token generation inside the caller's transaction; the new value."""
    conn.execute(
        "INSERT INTO token_generations (name, generation) VALUES (?, 1)"
        " ON CONFLICT (name) DO UPDATE SET generation = token_generations.generation + 1",
        (name,),
    )
    return conn.execute("SELECT generation FROM token_generations WHERE name = ?", (name,)).fetchone()[0]


def _create_private(path: Path) -> None:
    """Create *path* with mode 0600 if missing (before SQLite does, with the umask's mode), and
    tighten an existing file that others could read. The file holds password hashes."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with contextlib.suppress(OSError):  # not our file: leave it, SQLite will say if it can't open
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
    else:
        os.close(fd)
