"""The job store backends of the tests: a real PostgreSQL server (Debian's binaries, a throwaway
cluster) and SQLite.

``initdb`` refuses to run as root (tests and CI run as root), so the cluster belongs to an
unprivileged user (``nobody``) and its commands run through ``runuser``. The cluster lives in a
fresh folder under /tmp (pytest's own temporary folders are private to root), listens on a free
loopback port and on a unix socket in that folder, and trusts local connections. fsync is off:
the tests check semantics, not the disk. One cluster serves a whole test session; each test
gets its own database (CREATE DATABASE takes milliseconds).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from sdrest.jobs import JobStore, SqliteJobStore
from sdrest.jobs.pgstore import PostgresJobStore
from server_helpers import free_port

#: The account that owns the cluster when the tests run as root.
CLUSTER_USER = "nobody"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    return Path(found[-1]).parent


class PostgresCluster:
    """initdb + pg_ctl start on construction; :meth:`stop` ends it and removes its folder."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="sdrest-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam(CLUSTER_USER)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", CLUSTER_USER, "--"]
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self._start()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start"
            )
        except subprocess.CalledProcessError:
            log = (self.folder / "server.log").read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None

    def pause(self) -> None:
        """Shut the server down as an administrator would (``pg_ctl stop -m fast``: clients are
        disconnected), keeping its data: a database outage."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server again after :meth:`pause`, on the same port with the same data."""
        self._start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.folder,
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                [*self._as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.folder,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


BACKENDS = ("sqlite", "postgresql")


class Backend:
    """Where one test's stores live: one SQLite file, or one fresh PostgreSQL database.

    :meth:`open` gives another store on the same data, as another process would have.
    """

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    def open(self, clock: Callable[[], float] | None = None) -> JobStore:
        kwargs = {} if clock is None else {"clock": clock}
        if self.name == "sqlite":
            # synchronous=NORMAL only to keep hundreds of commits quick; no semantics depend on it.
            return SqliteJobStore(Path(self.url.removeprefix("sqlite:///")), synchronous="NORMAL", **kwargs)
        return PostgresJobStore(self.url, **kwargs)
