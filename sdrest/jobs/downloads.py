"""Model downloads in the job store: one row per download and host, beside the jobs.

A download (``POST /api/v1/models/downloads``) is a job of its own kind: durable like a
generation, but run by the download lane (:mod:`sdrest.worker.downloads`) of the host whose
models folder it writes to, never by the generation worker. It has one row per host it runs on
(one for a single server; each worker host of a cluster claims its own), so every host's
progress and outcome is kept apart; :class:`Download` is all rows of one id, seen as one.

Rows change only here, in transactions that append the download's lifecycle events
(``download.queued``, ``download.completed``, ``download.failed``, ``download.cancelled``) with
its view as data, owned by the admin who asked for it, so they reach the same event streams as
jobs. Progress updates append no event (the lane publishes those as ephemeral events).

A request for a file that a download still running already fetches joins that download (the
``join_key``: the canonical source, type and name) instead of fetching it twice.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sdrest.jobs.eventlog import Cursor, JobRef, Transaction, dumps, loads

_DOWNLOAD_COLUMNS = (
    "id, host, status, owner, request, files, bytes_done, bytes_total, bytes_per_second, error, "
    "created_at, started_at, finished_at, attempts"
)


class DownloadStatus(str, enum.Enum):
    """queued -> downloading -> verifying -> completed | failed | cancelled (per host)."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED)


_ACTIVE_SQL = "('queued', 'downloading', 'verifying')"
_RUNNING_SQL = "('downloading', 'verifying')"


@dataclass(frozen=True)
class DownloadFile:
    """One file a download writes, as far as it got."""

    source: str
    name: str
    type: str | None = None
    size: int | None = None
    sha256: str | None = None
    bytes_done: int = 0
    path: str | None = None
    skipped_existing: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadFile:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class DownloadError:
    """Why a download failed: a stable snake_case code and a message naming the fix."""

    code: str
    message: str


@dataclass(frozen=True)
class DownloadHost:
    """One host's row of a download."""

    host: str
    status: DownloadStatus
    files: tuple[DownloadFile, ...] = ()
    bytes_done: int = 0
    bytes_total: int | None = None
    bytes_per_second: float = 0.0
    error: DownloadError | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: Times a lane took this row up (more than one: it was interrupted and resumed).
    attempts: int = 0


@dataclass(frozen=True)
class Download:
    """A download and its rows, one per host (in the order they were asked for)."""

    id: str
    owner: str | None
    #: What was asked: ``source`` (with ``type``, ``sha256``, ``name`` when given) or ``recipe``.
    request: dict[str, Any]
    created_at: float
    hosts: tuple[DownloadHost, ...] = field(default_factory=tuple)

    def host(self, name: str) -> DownloadHost | None:
        return next((row for row in self.hosts if row.host == name), None)

    @property
    def status(self) -> DownloadStatus:
        """The download's status across its hosts: the most advanced running one while any
        runs, else failed if any failed, cancelled if any was, completed when all are."""
        statuses = {row.status for row in self.hosts}
        for status in (
            DownloadStatus.DOWNLOADING,
            DownloadStatus.VERIFYING,
            DownloadStatus.QUEUED,
            DownloadStatus.FAILED,
            DownloadStatus.CANCELLED,
        ):
            if status in statuses:
                return status
        return DownloadStatus.COMPLETED

    def to_dict(self) -> dict[str, Any]:
        """The download's view (the API's ``Download`` model and its events' data)."""
        first = self.hosts[0] if self.hosts else None
        totals = [row.bytes_total for row in self.hosts]
        finished = [row.finished_at for row in self.hosts]
        started = [row.started_at for row in self.hosts if row.started_at is not None]
        error = next((row.error for row in self.hosts if row.error is not None), None)
        return {
            "id": self.id,
            "status": self.status.value,
            "source": self.request.get("source"),
            "recipe": self.request.get("recipe"),
            "files": [asdict(item) for item in (first.files if first else ())],
            "bytes_done": sum(row.bytes_done for row in self.hosts),
            "bytes_total": None if None in totals or not totals else sum(t for t in totals if t is not None),
            "bytes_per_second": sum(row.bytes_per_second for row in self.hosts),
            "error": None if error is None else asdict(error),
            "hosts": [
                {
                    "host": row.host,
                    "status": row.status.value,
                    "bytes_done": row.bytes_done,
                    "bytes_total": row.bytes_total,
                    "error": None if row.error is None else asdict(row.error),
                }
                for row in self.hosts
            ],
            "created_at": self.created_at,
            "started_at": min(started) if started else None,
            "finished_at": None if None in finished or not finished else max(t for t in finished if t is not None),
        }


def _host_from_row(row: tuple) -> DownloadHost:
    files, error = loads(row[5]), loads(row[9])
    return DownloadHost(
        host=row[1],
        status=DownloadStatus(row[2]),
        files=tuple(DownloadFile.from_dict(item) for item in files),
        bytes_done=row[6],
        bytes_total=row[7],
        bytes_per_second=row[8],
        error=None if error is None else DownloadError(str(error["code"]), str(error["message"])),
        started_at=row[11],
        finished_at=row[12],
        attempts=row[13],
    )


def _downloads_from_rows(rows: Iterable[tuple]) -> list[Download]:
    """Rows (ordered by seq) grouped into downloads, in the order of their first row."""
    grouped: dict[str, tuple[tuple, list[DownloadHost]]] = {}
    for row in rows:
        grouped.setdefault(row[0], (row, []))[1].append(_host_from_row(row))
    return [
        Download(id=first[0], owner=first[3], request=loads(first[4]), created_at=first[10], hosts=tuple(hosts))
        for first, hosts in grouped.values()
    ]


def _files_json(files: Sequence[DownloadFile]) -> str:
    return dumps([asdict(item) for item in files])


def _check_byte_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{name} must be a non-negative int, not {value!r}")


class DownloadStore(Protocol):
    """The download rows of a job store (both backends; see the module docstring)."""

    def create_download(
        self, request: dict[str, Any], *, join_key: str, hosts: Sequence[str], owner: str | None = None
    ) -> tuple[Download, bool]:
        """Queue a download on ``hosts``, or join the unfinished one with the same ``join_key``;
        returns it and whether it is new."""
        ...

    def get_download(self, download_id: str) -> Download | None: ...

    def list_downloads(self, *, limit: int = 50, offset: int = 0) -> tuple[list[Download], int]:
        """One page of downloads, newest first, and how many there are."""
        ...

    def claim_download(self, host: str) -> Download | None:
        """Take ``host``'s oldest queued row (marks it downloading); None when there is none."""
        ...

    def download_progress(
        self,
        download_id: str,
        host: str,
        *,
        files: Sequence[DownloadFile],
        bytes_done: int,
        bytes_total: int | None,
        bytes_per_second: float,
        status: DownloadStatus = DownloadStatus.DOWNLOADING,
    ) -> bool:
        """Record a running row's progress; False when it no longer runs (cancelled)."""
        ...

    def finish_download(
        self,
        download_id: str,
        host: str,
        status: DownloadStatus,
        *,
        files: Sequence[DownloadFile],
        error: DownloadError | None = None,
    ) -> Download | None:
        """End a running row as completed or failed; None when it no longer runs."""
        ...

    def cancel_download(self, download_id: str) -> Download | None:
        """Cancel every unfinished row; returns the download as it was before, or None."""
        ...

    def recover_downloads(self, host: str) -> list[Download]:
        """Queue again ``host``'s rows that a stop (even kill -9) cut off; they resume."""
        ...


class DownloadSql:
    """The download SQL both backends share (mixed into :class:`~sdrest.jobs.sqlstore.SqlJobStore`)."""

    #: Appended to the SELECT of the row a claim takes: PostgreSQL skips rows another claimer holds.
    _CLAIM_LOCK = ""

    # Provided by the store this is mixed into (sdrest.jobs.eventlog.EventLog and the backend).
    _clock: Any
    _write: Any
    _read: Any
    _query: Any
    _insert_event: Any

    def _lock_join_key(self, tx: Transaction, join_key: str) -> None:
        """Serialise creations of one join key (PostgreSQL; SQLite serialises every write)."""

    def _select_download(self, cursor: Cursor, download_id: str) -> Download | None:
        rows = cursor.execute(
            f"SELECT {_DOWNLOAD_COLUMNS} FROM downloads WHERE id = ? ORDER BY seq", (download_id,)
        ).fetchall()
        found = _downloads_from_rows(rows)
        return found[0] if found else None

    def _download_event(self, tx: Transaction, type_: str, download_id: str) -> Download:
        download = self._select_download(tx.cursor, download_id)
        assert download is not None  # the caller changed its rows in this transaction
        self._insert_event(tx, type_, JobRef(None, download.owner), download.to_dict())
        return download

    def create_download(
        self, request: dict[str, Any], *, join_key: str, hosts: Sequence[str], owner: str | None = None
    ) -> tuple[Download, bool]:
        if not hosts or len(set(hosts)) != len(hosts):
            raise ValueError("hosts must be a non-empty list without repeats")
        request_json = dumps(request)
        with self._write() as tx:
            self._lock_join_key(tx, join_key)
            running = tx.cursor.execute(
                f"SELECT id FROM downloads WHERE join_key = ? AND status IN {_ACTIVE_SQL} ORDER BY seq LIMIT 1",
                (join_key,),
            ).fetchone()
            if running is not None:
                joined = self._select_download(tx.cursor, running[0])
                assert joined is not None
                return joined, False
            download_id = str(uuid.uuid4())
            now = self._clock()
            for host in hosts:
                tx.cursor.execute(
                    "INSERT INTO downloads (id, host, status, owner, request, join_key, files, created_at)"
                    " VALUES (?, ?, 'queued', ?, ?, ?, '[]', ?)",
                    (download_id, host, owner, request_json, join_key, now),
                )
            return self._download_event(tx, "download.queued", download_id), True

    def get_download(self, download_id: str) -> Download | None:
        with self._read() as cursor:
            return self._select_download(cursor, download_id)

    def list_downloads(self, *, limit: int = 50, offset: int = 0) -> tuple[list[Download], int]:
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        with self._read() as cursor:
            ids = [
                row[0]
                for row in cursor.execute(
                    "SELECT id FROM downloads GROUP BY id ORDER BY MIN(seq) DESC LIMIT ? OFFSET ?", (limit, offset)
                ).fetchall()
            ]
            total = int(cursor.execute("SELECT COUNT(DISTINCT id) FROM downloads").fetchone()[0])
            if not ids:
                return [], total
            rows = cursor.execute(
                f"SELECT {_DOWNLOAD_COLUMNS} FROM downloads WHERE id IN ({', '.join('?' * len(ids))}) ORDER BY seq",
                ids,
            ).fetchall()
        by_id = {download.id: download for download in _downloads_from_rows(rows)}
        return [by_id[download_id] for download_id in ids], total

    def claim_download(self, host: str) -> Download | None:
        with self._write() as tx:
            row = tx.cursor.execute(
                "SELECT seq, id FROM downloads WHERE host = ? AND status = 'queued' ORDER BY seq LIMIT 1"
                f"{self._CLAIM_LOCK}",
                (host,),
            ).fetchone()
            if row is None:
                return None
            tx.cursor.execute(
                "UPDATE downloads SET status = 'downloading', started_at = COALESCE(started_at, ?),"
                " attempts = attempts + 1, bytes_per_second = 0 WHERE seq = ?",
                (self._clock(), row[0]),
            )
            return self._select_download(tx.cursor, row[1])

    def download_progress(
        self,
        download_id: str,
        host: str,
        *,
        files: Sequence[DownloadFile],
        bytes_done: int,
        bytes_total: int | None,
        bytes_per_second: float,
        status: DownloadStatus = DownloadStatus.DOWNLOADING,
    ) -> bool:
        _check_byte_count("bytes_done", bytes_done)
        _check_byte_count("bytes_total", bytes_total)
        if status not in (DownloadStatus.DOWNLOADING, DownloadStatus.VERIFYING):
            raise ValueError(f"progress sets downloading or verifying, not {status.value}")
        with self._write() as tx:
            return bool(
                tx.cursor.execute(
                    "UPDATE downloads SET status = ?, files = ?, bytes_done = ?, bytes_total = ?,"
                    f" bytes_per_second = ? WHERE id = ? AND host = ? AND status IN {_RUNNING_SQL}",
                    (
                        status.value,
                        _files_json(files),
                        bytes_done,
                        bytes_total,
                        float(bytes_per_second),
                        download_id,
                        host,
                    ),
                ).rowcount
            )

    def finish_download(
        self,
        download_id: str,
        host: str,
        status: DownloadStatus,
        *,
        files: Sequence[DownloadFile],
        error: DownloadError | None = None,
    ) -> Download | None:
        if status not in (DownloadStatus.COMPLETED, DownloadStatus.FAILED):
            raise ValueError(f"a download finishes completed or failed, not {status.value}")
        if (error is None) != (status is DownloadStatus.COMPLETED):
            raise ValueError("a failed download needs an error, a completed one has none")
        done = sum(item.bytes_done for item in files)
        with self._write() as tx:
            changed = tx.cursor.execute(
                "UPDATE downloads SET status = ?, files = ?, error = ?, finished_at = ?, bytes_per_second = 0,"
                f" bytes_done = ? WHERE id = ? AND host = ? AND status IN {_RUNNING_SQL}",
                (
                    status.value,
                    _files_json(files),
                    None if error is None else json.dumps(asdict(error)),
                    self._clock(),
                    done,
                    download_id,
                    host,
                ),
            ).rowcount
            if not changed:
                return None
            return self._download_event(tx, f"download.{status.value}", download_id)

    def cancel_download(self, download_id: str) -> Download | None:
        with self._write() as tx:
            before = self._select_download(tx.cursor, download_id)
            if before is None:
                return None
            changed = tx.cursor.execute(
                "UPDATE downloads SET status = 'cancelled', finished_at = ?, bytes_per_second = 0"
                f" WHERE id = ? AND status IN {_ACTIVE_SQL}",
                (self._clock(), download_id),
            ).rowcount
            if changed:
                self._download_event(tx, "download.cancelled", download_id)
            return before

    def recover_downloads(self, host: str) -> list[Download]:
        with self._write() as tx:
            ids = [
                row[0]
                for row in tx.cursor.execute(
                    f"SELECT id FROM downloads WHERE host = ? AND status IN {_RUNNING_SQL} ORDER BY seq", (host,)
                ).fetchall()
            ]
            tx.cursor.execute(
                "UPDATE downloads SET status = 'queued', bytes_per_second = 0"
                f" WHERE host = ? AND status IN {_RUNNING_SQL}",
                (host,),
            )
            return [self._download_event(tx, "download.queued", download_id) for download_id in ids]
