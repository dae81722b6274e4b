"""File hashes (full sha256, A1111's short and legacy hashes) and a persistent cache of them.

Why: clients and image metadata identify models by hash (A1111 writes ``Model hash:
abcdef1234`` into PNG infotext; Civitai looks models up by sha256), but hashing a 7 GB
checkpoint takes ~10-30 s. The :class:`HashCache` keeps each file's sha256 in SQLite
keyed by (resolved path, size, mtime_ns), so a file is hashed once per change, across
server restarts, and never during a plain scan.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from sdrest.errors import SdrestError
from sdrest.sqlitedb import USER_VERSION, Database

__all__ = [
    "CHUNK_SIZE",
    "HashCache",
    "legacy_model_hash",
    "sha256_file",
    "short_hash",
]

CHUNK_SIZE = 1 << 20
#: A1111's old "model hash": 64 KiB at offset 1 MiB (fast, but weak and now deprecated).
LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000


def sha256_file(path: Path) -> str:
    """Hex sha256 of a whole file, read in 1 MiB chunks (constant memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def short_hash(sha256: str) -> str:
    """A1111's "shorthash" (Civitai's AutoV2): the first 10 hex digits of the sha256."""
    return sha256[:10]


def legacy_model_hash(path: Path) -> str:
    """A1111's legacy ``model_hash``: sha256 of 0x10000 bytes at 0x100000, first 8 hex digits.

    Files shorter than the offset hash the empty string, exactly as A1111 does.
    """
    with open(path, "rb") as f:
        f.seek(LEGACY_OFFSET)
        return hashlib.sha256(f.read(LEGACY_LENGTH)).hexdigest()[:8]


def _key(path: Path, stat: os.stat_result | None = None) -> tuple[str, int, int]:
    path = Path(path).resolve()
    stat = stat if stat is not None else path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


#: The cache's schema versions (``PRAGMA user_version``). Version 1 is idempotent: caches written
#: before versions were recorded (at version 0) already have its table.
_MIGRATIONS = (
    (
        """CREATE TABLE IF NOT EXISTS hashes (
           path TEXT PRIMARY KEY,
           size INTEGER NOT NULL,
           mtime_ns INTEGER NOT NULL,
           sha256 TEXT NOT NULL,
           hashed_at REAL NOT NULL)""",
    ),
)


def _too_new(found: int, known: int) -> SdrestError:
    return SdrestError(f"the hash cache has schema version {found}; this sdrest knows {known}")


class HashCache:
    """sha256 per (resolved path, size, mtime_ns), in SQLite (``":memory:"`` for tests).

    One connection guarded by a lock (sqlite3 connections must not be used from two
    threads at once). Hashing itself runs *outside* the lock, so a long hash does not
    block lookups; two threads asking for the same new file may both hash it, which is
    harmless (same result) and rare.
    """

    def __init__(self, database: Path | str = ":memory:") -> None:
        self._db = Database(database, closed_error=lambda: SdrestError("the hash cache is closed"))
        try:
            self._db.migrate(_MIGRATIONS, ledger=USER_VERSION, too_new=_too_new)
        except BaseException:
            self._db.close()
            raise

    def get(self, path: Path, stat: os.stat_result | None = None) -> str | None:
        """The cached sha256 if the file is unchanged since it was hashed, else ``None``.

        ``stat`` (of the same path) saves a syscall when the caller already has it.
        """
        try:
            key, size, mtime_ns = _key(path, stat)
        except OSError:
            return None
        return self.lookup(key, size, mtime_ns)

    def lookup(self, resolved_path: str, size: int, mtime_ns: int) -> str | None:
        """:meth:`get` for a caller that already has the resolved path and stat (the
        scanner: resolving every file's path would dominate a warm scan)."""
        rows = self._db.query("SELECT size, mtime_ns, sha256 FROM hashes WHERE path = ?", (resolved_path,))
        row = rows[0] if rows else None
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        return row[2]

    def get_or_compute(self, path: Path) -> str:
        """The file's sha256, hashing it (and caching the result) only if it changed."""
        key, size, mtime_ns = _key(path)
        cached = self.get(path)
        if cached is not None:
            return cached
        digest = sha256_file(Path(key))
        # A file still being written changes under us: return its hash but do not cache
        # it under a (size, mtime) that no longer describes the bytes we read.
        after = _key(path)
        if after == (key, size, mtime_ns):
            self._db.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", (key, size, mtime_ns, digest, time.time())
            )
        return digest

    def forget_missing(self) -> int:
        """Drop rows of files that no longer exist; returns how many (housekeeping)."""
        paths = [row[0] for row in self._db.query("SELECT path FROM hashes")]
        gone = [(p,) for p in paths if not os.path.exists(p)]
        if gone:
            self._db.executemany("DELETE FROM hashes WHERE path = ?", gone)
        return len(gone)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
