"""The data folder: private to the server's user, and used by one server at a time.

Everything in it is private: ``jobs.sqlite3`` holds every prompt, ``outputs/`` and ``inputs/``
every image, ``auth.sqlite3`` password hashes. So the server runs with umask 077 (files 0600,
folders 0700, the worker process included) and creates its folders 0700.

Two servers on one data folder would claim each other's jobs and fail each other's running
job at start-up (each takes the other's "running" job for an interrupted one), so the server
holds an exclusive ``flock`` on ``<data_dir>/sdrest.lock`` for its lifetime. The kernel drops
the lock when the process dies, ``kill -9`` included, so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from pathlib import Path

from sdrest.errors import SdrestError

log = logging.getLogger("sdrest")

#: The umask the server runs with: nothing it writes is readable by other users.
PRIVATE_UMASK = 0o077
LOCK_NAME = "sdrest.lock"


class DataDirBusyError(SdrestError, RuntimeError):
    """Another server already uses this data folder."""


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) mode 0700; an existing folder others can read is tightened
    (with a warning) when it is ours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        log.warning("%s was readable by other users (mode %o): now 0700", path, stat.S_IMODE(info.st_mode))
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)


def tighten_file(path: Path) -> None:
    """Make an existing file of ours 0600 (databases written by older versions were 0644)."""
    with contextlib.suppress(FileNotFoundError):
        info = path.stat()
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.chmod(path, 0o600)


class DataDirLock:
    """An exclusive lock on a data folder, held until :meth:`release` or process exit."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise DataDirBusyError(
                f"another sdrest server (pid {holder}) is using the data folder {data_dir}; "
                "stop it first, or give this one its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
