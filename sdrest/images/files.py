"""The image store in a folder (``--image-store files``, the default on SQLite): the folder the
worker writes (``<output-dir>/<job id>/``) is the store, so publishing moves nothing and every
file stays where it always was. Several machines need that folder shared (NFS or similar)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sdrest.images.store import StoredFile, check_name, content_type, input_dir
from sdrest.outputs import discard_job_outputs, job_thumbnail


class FileImageStore:
    """:class:`~sdrest.images.store.ImageStore` on ``root`` (the outputs folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, job_id: str) -> Path:
        return self.root / check_name(job_id, "job_id")

    def publish(self, job_id: str) -> None:
        check_name(job_id, "job_id")  # the worker wrote it where it is served from

    def open(self, job_id: str, name: str) -> StoredFile | None:
        root = self.root.resolve()
        path = (self._folder(job_id) / check_name(name)).resolve()
        if not path.is_relative_to(root) or not path.is_file():  # a link out of the folder is not followed
            return None
        stat = path.stat()
        return StoredFile(name, content_type(name), stat.st_size, stat.st_mtime, path=path)

    def thumbnail(self, job_id: str, name: str, size: int) -> StoredFile | None:
        source = self.open(job_id, name)
        if source is None or source.path is None:
            return None
        path = job_thumbnail(source.path, size, self._folder(job_id))
        stat = path.stat()
        return StoredFile(path.name, content_type(path.name), stat.st_size, stat.st_mtime, path=path)

    def names(self, job_id: str) -> list[str]:
        folder = self._folder(job_id)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def delete_job(self, job_id: str) -> None:
        discard_job_outputs(self.root, check_name(job_id, "job_id"))

    def drop_staged(self, job_id: str) -> None:
        check_name(job_id, "job_id")  # the staging folder is the store: nothing is only staged

    # Inputs stay where the API node saved them: the worker reads the same data folder.

    def publish_inputs(self, data_dir: Path, folder: str) -> None:
        input_dir(data_dir, folder)

    def fetch_inputs(self, data_dir: Path, folder: str) -> None:
        input_dir(data_dir, folder)

    def drop_fetched_inputs(self, data_dir: Path, folder: str) -> None:
        input_dir(data_dir, folder)  # the saved inputs themselves: kept until the job is deleted

    def delete_inputs(self, data_dir: Path, folder: str) -> None:
        shutil.rmtree(input_dir(data_dir, folder), ignore_errors=True)
