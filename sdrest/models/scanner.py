"""The model library: scan the type folders into :class:`ModelEntry` snapshots.

Why this shape:

* A scan builds a complete new snapshot and swaps it in under a lock, so readers (API
  requests) always see one consistent listing, never a half-scanned one.
* Detection only reads headers, but even that is skipped for files whose (path, size,
  mtime_ns) are unchanged since the previous scan: a rescan of an unchanged library
  costs one ``stat`` per file (the issue's target: 1,000 files in well under 1 s).
* Hashing a multi-GB file is slow, so a scan only *reports* hashes already in the
  :class:`~sdrest.models.hashing.HashCache`; :meth:`ModelLibrary.hashes` computes them on
  demand.
* Files are only ever reached through their type folder: hidden files are skipped and a
  symlink whose target leaves the folder is refused (unless ``allow_symlinks``), the
  same rule :func:`~sdrest.models.paths.resolve_model` applies to names in requests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from sdrest.models.detect import Detection, detect
from sdrest.models.hashing import HashCache, legacy_model_hash, sha256_file, short_hash
from sdrest.models.paths import ModelNotFoundError, resolve_model
from sdrest.models.types import ModelFolders, ModelType

__all__ = ["FileHashes", "ModelEntry", "ModelLibrary", "ScanResult", "SkippedFile"]

#: Guard against symlink loops and absurd trees.
MAX_DEPTH = 32


@dataclass(frozen=True)
class ModelEntry:
    """One model file as the library lists it."""

    id: str  # "checkpoint/sd15/v1-5.safetensors": stable while the file stays put
    type: ModelType
    name: str  # "sd15/v1-5": what users type (resolves with or without extension)
    path: Path  # absolute path on the server (not exposed by to_dict by default)
    relative_path: str  # "sd15/v1-5.safetensors", POSIX separators
    category: str  # first sub-folder ("sd15"), "" at the top level
    size: int
    mtime: float
    extension: str  # lower-case, with the dot
    detection: Detection | None = None
    sha256: str | None = None
    short_hash: str | None = None


@dataclass(frozen=True)
class SkippedFile:
    """A file the scan saw but did not list, and why (shown to admins, not to users)."""

    type: ModelType
    path: str
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """What one scan found. ``entries`` is the new snapshot, sorted by type then name."""

    entries: tuple[ModelEntry, ...]
    skipped: tuple[SkippedFile, ...] = ()
    missing_folders: tuple[ModelType, ...] = ()
    seconds: float = 0.0
    detected: int = 0  # files whose header was read in this scan (cache misses)
    finished_at: float = field(default_factory=time.time)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            out[entry.type.api_name] = out.get(entry.type.api_name, 0) + 1
        return out


@dataclass(frozen=True)
class FileHashes:
    """All hashes of one file: sha256, A1111 short hash (AutoV2) and legacy model hash."""

    sha256: str
    short_hash: str
    legacy_hash: str


_DetectionKey = tuple[str, int, int]  # (path, size, mtime_ns)


def _sort_key(entry: ModelEntry) -> tuple[int, str, str]:
    return int(entry.type), entry.name.lower(), entry.name


class ModelLibrary:
    """The listing of every model file under a :class:`ModelFolders`, kept up to date by :meth:`scan`."""

    def __init__(
        self,
        folders: ModelFolders,
        hash_cache: HashCache | None = None,
        *,
        allow_symlinks: bool = False,
        detect_files: bool = True,
    ) -> None:
        self.folders = folders
        self.hash_cache = hash_cache
        self.allow_symlinks = allow_symlinks
        self.detect_files = detect_files
        self._lock = threading.RLock()  # guards the snapshot and the detection cache
        self._scan_lock = threading.Lock()  # one scan at a time
        self._entries: dict[str, ModelEntry] = {}
        self._ordered: tuple[ModelEntry, ...] = ()
        self._detections: dict[_DetectionKey, Detection] = {}
        self.last_scan: ScanResult | None = None

    # ------------------------------------------------------------------ scanning

    def scan(self) -> ScanResult:
        """Rescan every type folder and atomically replace the snapshot."""
        with self._scan_lock:
            started = time.perf_counter()
            with self._lock:
                previous = dict(self._detections)
            detections: dict[_DetectionKey, Detection] = {}
            entries: list[ModelEntry] = []
            skipped: list[SkippedFile] = []
            missing: list[ModelType] = []
            detected = 0
            for model_type, folder in self.folders.items():
                if not folder.is_dir():
                    missing.append(model_type)
                    continue
                for path, real, relative, stat in self._walk(model_type, folder, skipped):
                    key = (str(path), stat.st_size, stat.st_mtime_ns)
                    detection = None
                    if self.detect_files:
                        detection = previous.get(key)
                        if detection is None:
                            detection = detect(path, model_type)
                            detected += 1
                        detections[key] = detection
                    entries.append(self._entry(model_type, path, relative, stat, detection, real))
            entries.sort(key=_sort_key)
            result = ScanResult(tuple(entries), tuple(skipped), tuple(missing), time.perf_counter() - started, detected)
            with self._lock:
                self._entries = {e.id: e for e in entries}
                self._ordered = result.entries
                self._detections = detections  # drops entries of deleted/changed files
                self.last_scan = result
            return result

    def _walk(
        self, model_type: ModelType, folder: Path, skipped: list[SkippedFile]
    ) -> Iterator[tuple[Path, str, str, os.stat_result]]:
        """Yield ``(path, resolved path, relative posix path, stat)`` of the type's files.

        The resolved path is built from the folder's (resolved once per folder) unless the
        file is a symlink: resolving every file separately would dominate a warm scan.
        """
        root = folder.resolve()
        extensions = model_type.extensions
        visited: set[tuple[int, int]] = set()
        stack: list[tuple[Path, str, int]] = [(folder, "", 0)]
        while stack:
            directory, rel_dir, depth = stack.pop()
            try:
                info = directory.stat()
                if (info.st_dev, info.st_ino) in visited:
                    continue  # symlink loop, or a directory linked twice
                visited.add((info.st_dev, info.st_ino))
                real_dir = os.path.realpath(directory)
                with os.scandir(directory) as it:
                    items = list(it)
            except OSError as exc:
                skipped.append(SkippedFile(model_type, rel_dir or ".", f"unreadable folder ({exc.strerror})"))
                continue
            for item in items:
                if item.name.startswith("."):
                    continue  # hidden files and folders (.git, .cache, partial downloads)
                relative = f"{rel_dir}/{item.name}" if rel_dir else item.name
                try:
                    is_link = item.is_symlink()
                    is_dir = item.is_dir()  # follows symlinks
                    if not is_dir and os.path.splitext(item.name)[1].lower() not in extensions:
                        continue
                    if is_link and not self.allow_symlinks:
                        target = Path(item.path).resolve()
                        if not target.is_relative_to(root):
                            skipped.append(SkippedFile(model_type, relative, "symlink leads outside the folder"))
                            continue
                    if is_dir:
                        if depth + 1 >= MAX_DEPTH:
                            skipped.append(SkippedFile(model_type, relative, "folder nested too deep"))
                        else:
                            stack.append((Path(item.path), relative, depth + 1))
                        continue
                    if not item.is_file():
                        if is_link:
                            skipped.append(SkippedFile(model_type, relative, "broken symlink"))
                        continue
                    stat = item.stat()
                except OSError as exc:  # broken symlink, permission, vanished meanwhile
                    skipped.append(SkippedFile(model_type, relative, f"unreadable ({exc.strerror or exc})"))
                    continue
                real = os.path.realpath(item.path) if is_link else os.path.join(real_dir, item.name)
                yield Path(item.path), real, relative, stat

    def _entry(
        self,
        model_type: ModelType,
        path: Path,
        relative: str,
        stat: os.stat_result,
        detection: Detection | None,
        real: str | None = None,
    ) -> ModelEntry:
        pure = PurePosixPath(relative)
        name = str(pure.with_suffix("")) if pure.suffix else relative
        sha = None
        if self.hash_cache is not None:
            sha = (
                self.hash_cache.lookup(real, stat.st_size, stat.st_mtime_ns)
                if real is not None
                else self.hash_cache.get(path, stat)
            )
        return ModelEntry(
            id=f"{model_type.api_name}/{relative}",
            type=model_type,
            name=name,
            path=path,
            relative_path=relative,
            category=pure.parts[0] if len(pure.parts) > 1 else "",
            size=stat.st_size,
            mtime=stat.st_mtime,
            extension=pure.suffix.lower(),
            detection=detection,
            sha256=sha,
            short_hash=short_hash(sha) if sha else None,
        )

    # ------------------------------------------------------------------ queries

    def entries(self, type_filter: ModelType | None = None, search: str | None = None) -> list[ModelEntry]:
        """The snapshot, optionally only some types and names containing ``search`` (any case)."""
        with self._lock:
            entries = self._ordered
        needle = search.strip().lower() if search else ""
        return [
            e
            for e in entries
            if (type_filter is None or e.type & type_filter) and (not needle or needle in e.name.lower())
        ]

    def get(self, model_id: str) -> ModelEntry | None:
        """The entry with this id (``"checkpoint/sd15/v1-5.safetensors"``), if listed."""
        with self._lock:
            return self._entries.get(model_id)

    def find(self, model_type: ModelType, name: str, field: str | None = None) -> ModelEntry:
        """Resolve a user-given name (with or without extension, with sub-folders) to an entry.

        Raises :class:`ModelNotFoundError` (its ``field`` is ``field`` or the type's API
        name) for unknown names, ``..``/absolute names, hidden files and symlinks that
        leave the folder. A file added since the last scan is found too (and detected now).
        """
        field = field or model_type.api_name
        folder = self.folders.path(model_type)
        path = resolve_model(folder, name, field, model_type.extensions, self.allow_symlinks)
        root = folder.resolve()
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:  # allowed symlink to outside: list it under the name used
            relative = PurePosixPath(name.replace(os.sep, "/")).as_posix()
            if not relative.lower().endswith(path.suffix.lower()):
                relative += path.suffix
        pure = PurePosixPath(relative)
        if any(part.startswith(".") for part in pure.parts) or pure.suffix.lower() not in model_type.extensions:
            raise ModelNotFoundError(field, name)  # a scan would not list it either
        entry = self.get(f"{model_type.api_name}/{relative}")
        if entry is not None:
            return entry
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        detection = None
        if self.detect_files:
            with self._lock:
                detection = self._detections.get(key)
            if detection is None:
                detection = detect(path, model_type)
                with self._lock:
                    self._detections[key] = detection
        return self._entry(model_type, path, relative, stat, detection)

    # ------------------------------------------------------------------ hashes

    def hashes(self, entry: ModelEntry) -> FileHashes:
        """Compute (or fetch from the cache) the entry's hashes; updates the listed entry."""
        sha = self.hash_cache.get_or_compute(entry.path) if self.hash_cache is not None else sha256_file(entry.path)
        result = FileHashes(sha, short_hash(sha), legacy_model_hash(entry.path))
        with self._lock:
            listed = self._entries.get(entry.id)
            if listed is not None and listed.path == entry.path and listed.sha256 != sha:
                updated = replace(listed, sha256=sha, short_hash=result.short_hash)
                self._entries[entry.id] = updated
                self._ordered = tuple(updated if e.id == entry.id else e for e in self._ordered)
        return result

    # ------------------------------------------------------------------ JSON

    @staticmethod
    def to_dict(entry: ModelEntry, include_path: bool = False) -> dict[str, Any]:
        """A JSON-ready dict of the entry (the server path only with ``include_path``)."""
        detection = entry.detection
        out: dict[str, Any] = {
            "id": entry.id,
            "type": entry.type.api_name,
            "name": entry.name,
            "relative_path": entry.relative_path,
            "category": entry.category,
            "size": entry.size,
            "mtime": entry.mtime,
            "extension": entry.extension,
            "architecture": detection.architecture if detection else None,
            "variant": detection.variant if detection else None,
            "detection": asdict(detection) if detection else None,
            "sha256": entry.sha256,
            "short_hash": entry.short_hash,
        }
        if include_path:
            out["path"] = str(entry.path)
        return out
