"""The image store's interface, and what every implementation shares.

A worker process writes a job's files (``0.png``, ``0.json``, ..., ``video.webp``) into the
job's folder under ``--output-dir`` on its own machine, as it always did. That folder is the
*staging* folder: the supervisor, before it stores the job as completed, hands it to the image
store (:meth:`ImageStore.publish`), and from then on every node reads the job's files through
the store, never from a path:

* :class:`~sdrest.images.files.FileImageStore` (``--image-store files``): the staging folder is
  the store (today's behaviour, byte for byte: ``<output-dir>/<job id>/<name>``). API nodes on
  other machines need that folder shared.
* :class:`~sdrest.images.pgimages.PgImageStore` (``--image-store database``; the default with a
  ``postgresql://`` store): publishing copies the files into the ``job_files`` table in one
  transaction and removes the staging folder, so no folder is shared.

An S3-compatible store would implement the same six methods (objects ``<prefix>/<job id>/<name>``;
publish uploads and removes the staging folder; delete removes the prefix).

Names are plain file names (:func:`check_name`), job ids too: nothing a client sends becomes a
path, and a stored result's ``file`` (``<job id>/<name>``) is checked against its job.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sdrest.jobs.store import JobStoreError

if TYPE_CHECKING:
    from sdrest.jobs import JobStore
    from sdrest.settings import Settings

__all__ = [
    "ImageStore",
    "ImageStoreError",
    "StoredFile",
    "check_name",
    "content_type",
    "encode_file",
    "file_parameters",
    "input_dir",
    "open_image_store",
    "read_file",
    "split_file",
]

#: A job id or a file name: letters, digits, ``.``, ``_``, ``-``; not starting with a dot.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class ImageStoreError(JobStoreError):
    """The image store cannot be used (a schema from a newer sdrest, a bad setting). A kind of
    :class:`~sdrest.jobs.JobStoreError`: it lives beside the job store, and fails with it."""


@dataclass(frozen=True)
class StoredFile:
    """One stored file of a job: on disk (``path``) or in memory (``data``), never both."""

    name: str
    content_type: str
    size: int
    #: When it was written (seconds since the epoch): Last-Modified.
    modified: float
    path: Path | None = None
    data: bytes | None = None
    #: The HTTP entity tag of a file held in memory (a file on disk gets the web server's own).
    etag: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix


class ImageStore(Protocol):
    """Where finished jobs' files live (see the module docstring)."""

    def publish(self, job_id: str) -> None:
        """Make what the worker wrote in the job's staging folder the job's stored files
        (replacing an earlier attempt's). Before the job is stored as completed."""

    def open(self, job_id: str, name: str) -> StoredFile | None:
        """The job's file ``name``; None if there is none."""

    def thumbnail(self, job_id: str, name: str, size: int) -> StoredFile | None:
        """A thumbnail of the job's image ``name`` whose longest side is ``size`` (rounded up to
        :data:`sdrest.outputs.THUMBNAIL_SIZES`), made once and kept with the job."""

    def names(self, job_id: str) -> list[str]:
        """The names of the job's files (not its thumbnails), sorted."""

    def delete_job(self, job_id: str) -> None:
        """Remove every file of the job, its thumbnails and this node's staging folder of it
        (idempotent): a deleted job, or one that ended without completing."""

    def drop_staged(self, job_id: str) -> None:
        """Remove this node's staging folder of the job, leaving its stored files alone: a
        worker that lost the job to another must not touch that one's files."""

    # A request's input images (init image, mask, control image, ...): the API node saves them
    # in ``<data-dir>/<folder>`` (``folder`` = the job's ``_inputs``, ``inputs/<id>``), and the
    # worker process reads them from that path in ITS data folder.

    def publish_inputs(self, data_dir: Path, folder: str) -> None:
        """Make the request's saved inputs readable by a worker on any machine, before its job
        is queued."""

    def fetch_inputs(self, data_dir: Path, folder: str) -> None:
        """Put the job's inputs in ``<data_dir>/<folder>`` on this machine before its worker
        process reads them (nothing to do where they are there already)."""

    def drop_fetched_inputs(self, data_dir: Path, folder: str) -> None:
        """Remove what :meth:`fetch_inputs` put here (the stored inputs stay: a next attempt
        fetches them again)."""

    def delete_inputs(self, data_dir: Path, folder: str) -> None:
        """Remove the inputs of a deleted job or a refused request (idempotent)."""


def check_name(value: str, field: str = "name") -> str:
    """``value`` if it is a plain name (a job id or a file name), else ``ValueError`` naming
    ``field``: no separators, no ``..``, no leading dot, no control characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ValueError(f"{field}: must be a plain name (letters, digits, . _ -), got {value!r}")
    return value


def input_dir(data_dir: Path, folder: str) -> Path:
    """``<data_dir>/<folder>`` for a job's ``_inputs`` folder (``inputs/<plain name>``), resolved
    inside ``<data_dir>/inputs``; ``ValueError`` naming ``inputs`` for anything else."""
    parent, _, name = folder.partition("/") if isinstance(folder, str) else ("", "", "")
    root = (data_dir / "inputs").resolve()
    if parent != "inputs" or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"inputs: must be inputs/<plain name>, got {folder!r}")
    path = (root / name).resolve()
    if path.parent != root:  # a link out of the inputs folder is not followed
        raise ValueError(f"inputs: {folder!r} leads out of {root}")
    return path


def split_file(job_id: str, file: str) -> str:
    """The file name of a stored result's ``file`` (``<job id>/<name>``) of job ``job_id``;
    ``ValueError`` if it names another job or is not a plain name."""
    owner, _, name = file.partition("/")
    if owner != job_id:
        raise ValueError(f"file: {file!r} is not a file of job {job_id}")
    return check_name(name, "file")


def content_type(name: str) -> str:
    """The media type of a stored file, from its extension."""
    guessed, _ = mimetypes.guess_type(name)
    if name.endswith(".webp"):
        return "image/webp"  # not in every Python's table
    return guessed or "application/octet-stream"


def encode_file(images: ImageStore, job_id: str, file: str) -> str:
    """A stored result's ``file`` of job ``job_id`` as base64 (no data: prefix); ``FileNotFoundError``
    if the store has no such file."""
    return base64.b64encode(read_file(images, job_id, file)).decode("ascii")


def file_parameters(
    images: ImageStore, job_id: str, file: str, data: bytes | None = None
) -> tuple[str | None, dict | None]:
    """``(infotext, metadata)`` of a stored image (its own chunks, then its JSON sidecar);
    ``data``: its bytes when the caller has read them already (see :func:`read_file`)."""
    from sdrest.outputs import parameters_of

    name = split_file(job_id, file)
    if data is None:
        data = read_file(images, job_id, file)

    def sidecar() -> bytes | None:
        stored = images.open(job_id, Path(name).with_suffix(".json").name)
        return stored.read() if stored is not None else None

    return parameters_of(data, sidecar)


def read_file(images: ImageStore, job_id: str, file: str) -> bytes:
    """The bytes of a stored result's ``file``; ``FileNotFoundError`` if the store has none."""
    stored = images.open(job_id, split_file(job_id, file))
    if stored is None:
        raise FileNotFoundError(f"job {job_id} has no file {file!r}")
    return stored.read()


def uses_database(settings: Settings) -> bool:
    """``--image-store``, with ``auto`` resolved: the database with a PostgreSQL store."""
    from sdrest.jobs.store import is_postgres_url

    if settings.image_store == "auto":
        return is_postgres_url(settings.store_url)
    return settings.image_store == "database"


def open_image_store(settings: Settings, store: JobStore) -> ImageStore:
    """The image store ``--image-store`` names: the database shares the job store's pool."""
    if not uses_database(settings):
        from sdrest.images.files import FileImageStore

        return FileImageStore(settings.outputs_dir)
    database = getattr(store, "database", None)
    if database is None:
        raise ImageStoreError("image_store: database needs a postgresql:// --store")
    from sdrest.images.pgimages import PgImageStore

    return PgImageStore(database, staging=settings.outputs_dir)
