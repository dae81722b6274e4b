"""The image store in PostgreSQL (``--image-store database``, the default with a
``postgresql://`` store): a job's files are rows of ``job_files``, in the database the jobs are
in, so worker nodes and API nodes share no folder.

* **Publishing**: the supervisor reads the files the worker process wrote into the staging
  folder (``<output-dir>/<job id>/``, on the worker's machine), replaces the job's rows with them
  in one transaction, then removes the folder. It runs before the job is stored as completed,
  so a client that sees it completed finds every file on any node.
* **Rows go with their job**: ``job_id`` references ``jobs(id)`` with ``ON DELETE CASCADE``,
  so deleting a job (the API, retention on any node) deletes its files in the same statement; a
  job that ends without completing has its rows and staging folder removed by
  :meth:`PgImageStore.delete_job` before its state is stored, as with folders.
* **Storage**: ``bytea``, stored ``EXTERNAL`` (out of line, not compressed again: PNG, JPEG,
  WebP and MP4 are compressed already). A file is read whole into memory to be served.
* **Input images** of a request (``<data-dir>/inputs/<id>/``) are rows of ``input_files``: the
  API node stores them before the job is queued and removes its copy; the worker's supervisor
  writes them into its own data folder before its worker process runs the job, and removes
  them after. They are deleted with the job (``DELETE``, retention), by folder.
* **Thumbnails** are made on the node that is asked, once, and kept as rows of the job
  (``.thumbnails/...``), so they go with it too.

The store shares the job store's connection pool (:class:`sdrest.pgdb.PgDatabase`) and keeps its
schema version in its own ledger, ``image_schema_version``, migrated at start-up under its own
advisory lock like the job and auth stores'.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from sdrest.images.store import ImageStoreError, StoredFile, check_name, content_type, input_dir
from sdrest.outputs import THUMBNAIL_DIR, discard_job_outputs, thumbnail_bytes, thumbnail_size
from sdrest.pgdb import PgDatabase

log = logging.getLogger("sdrest.images")

# Never edit a released migration; append a new one. Needs the job store's schema (jobs.id).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE job_files (
            job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            name         TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size         BIGINT NOT NULL,
            created_at   DOUBLE PRECISION NOT NULL,
            data         BYTEA NOT NULL,
            PRIMARY KEY (job_id, name)
        )
        """,
        "ALTER TABLE job_files ALTER COLUMN data SET STORAGE EXTERNAL",
    ),
    (
        # A request's input images, saved before its job exists (a worker may claim the job
        # the moment it is queued), so keyed by the job's ``_inputs`` folder, not its id.
        """
        CREATE TABLE input_files (
            folder     TEXT NOT NULL,
            name       TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            data       BYTEA NOT NULL,
            PRIMARY KEY (folder, name)
        )
        """,
        "ALTER TABLE input_files ALTER COLUMN data SET STORAGE EXTERNAL",
    ),
)
_LEDGER = "image_schema_version"
_MIGRATION_LOCK = 0x7364696D6773  # "sdimgs"

_COLUMNS = "name, content_type, size, created_at, data"
_INSERT = f"INSERT INTO job_files (job_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"


class PgImageStore:
    """:class:`~sdrest.images.store.ImageStore` in the ``job_files`` table (module docstring)."""

    def __init__(self, database: PgDatabase, *, staging: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self.staging = staging
        self._clock = clock

        def too_new(current: int, known: int) -> ImageStoreError:
            return ImageStoreError(
                f"{database.url} has image schema version {current}; this sdrest knows only up to {known}"
                " (was it written by a newer version?)"
            )

        for version in database.migrate(_MIGRATIONS, ledger=_LEDGER, lock=_MIGRATION_LOCK, too_new=too_new):
            log.info("image store %s: schema migrated to version %d", database.url, version)

    def publish(self, job_id: str) -> None:
        folder = self.staging / check_name(job_id, "job_id")
        if not folder.is_dir():
            return  # nothing written (a job without files), or published already
        now = self._clock()
        files = _plain_files(folder)
        rows = [(job_id, p.name, content_type(p.name), len(data := p.read_bytes()), now, data) for p in files]
        try:
            with self._db.write() as cursor:
                cursor.execute("DELETE FROM job_files WHERE job_id = ?", (job_id,))
                for row in rows:
                    cursor.execute(_INSERT, row)
        except psycopg.errors.ForeignKeyViolation:
            log.info("job %s was deleted before its files were stored: dropping them", job_id)
        discard_job_outputs(self.staging, job_id)

    def open(self, job_id: str, name: str) -> StoredFile | None:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM job_files WHERE job_id = ? AND name = ?",
            (check_name(job_id, "job_id"), check_name(name)),
        )
        return _stored(job_id, rows[0]) if rows else None

    def thumbnail(self, job_id: str, name: str, size: int) -> StoredFile | None:
        size = thumbnail_size(size)
        cached = [f"{THUMBNAIL_DIR}/{size}-{check_name(name)}{ext}" for ext in (".jpg", ".png")]
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM job_files WHERE job_id = ? AND name IN (?, ?)",
            (check_name(job_id, "job_id"), *cached),
        )
        if rows:
            return _stored(job_id, rows[0])
        source = self.open(job_id, name)
        if source is None:
            return None
        data, ext = thumbnail_bytes(source.read(), size)
        thumb = f"{THUMBNAIL_DIR}/{size}-{name}{ext}"
        row = (thumb, content_type(thumb), len(data), self._clock(), data)
        try:  # two nodes asked at once: the first one's stays
            self._db.query(f"{_INSERT} ON CONFLICT (job_id, name) DO NOTHING RETURNING name", (job_id, *row))
        except psycopg.errors.ForeignKeyViolation:
            pass  # the job was deleted meanwhile: serve it this once
        return _stored(job_id, row)

    def names(self, job_id: str) -> list[str]:
        rows = self._db.query(
            "SELECT name FROM job_files WHERE job_id = ? AND left(name, 1) <> '.' ORDER BY name",
            (check_name(job_id, "job_id"),),
        )
        return [row[0] for row in rows]

    def delete_job(self, job_id: str) -> None:
        self._db.query("DELETE FROM job_files WHERE job_id = ? RETURNING name", (check_name(job_id, "job_id"),))
        discard_job_outputs(self.staging, job_id)

    def drop_staged(self, job_id: str) -> None:
        discard_job_outputs(self.staging, check_name(job_id, "job_id"))

    def publish_inputs(self, data_dir: Path, folder: str) -> None:
        local = input_dir(data_dir, folder)
        now = self._clock()
        rows = [(folder, p.name, now, p.read_bytes()) for p in _plain_files(local)]
        with self._db.write() as cursor:
            cursor.execute("DELETE FROM input_files WHERE folder = ?", (folder,))
            for row in rows:
                cursor.execute("INSERT INTO input_files (folder, name, created_at, data) VALUES (?, ?, ?, ?)", row)
        shutil.rmtree(local, ignore_errors=True)  # the worker fetches them: no copy stays here

    def fetch_inputs(self, data_dir: Path, folder: str) -> None:
        local = input_dir(data_dir, folder)
        rows = self._db.query("SELECT name, data FROM input_files WHERE folder = ?", (folder,))
        local.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data in rows:
            target = local / check_name(name)
            partial = target.with_name(f".{name}.part")
            partial.write_bytes(bytes(data))
            os.replace(partial, target)  # another attempt on this machine never reads half a file

    def drop_fetched_inputs(self, data_dir: Path, folder: str) -> None:
        shutil.rmtree(input_dir(data_dir, folder), ignore_errors=True)

    def delete_inputs(self, data_dir: Path, folder: str) -> None:
        local = input_dir(data_dir, folder)
        self._db.query("DELETE FROM input_files WHERE folder = ? RETURNING name", (folder,))
        shutil.rmtree(local, ignore_errors=True)


def _plain(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def _plain_files(folder: Path) -> list[Path]:
    """The files of a folder that may be stored: plain names, no links, no hidden files."""
    if not folder.is_dir():
        return []
    return [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".") and _plain(p.name)
    ]


def _stored(job_id: str, row: tuple) -> StoredFile:
    name, kind, size, created, data = row
    tag = hashlib.sha256(f"{job_id}\0{name}\0{size}\0{created!r}".encode()).hexdigest()[:32]
    return StoredFile(name, kind, int(size), float(created), data=bytes(data), etag=tag)
