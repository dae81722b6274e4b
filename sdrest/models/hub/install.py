"""Put a model from a hub into the library: the one code path of the download lane and the CLI.

:func:`install` resolves the source, picks the typed folder (the type given; else the hub's,
Civitai's model type; else the file's own header, through :mod:`sdrest.models.detect`), keeps the
name inside that folder, takes only that type's extensions, skips a file already there with the
same hash, downloads (:func:`~sdrest.models.hub.transfer.fetch`: resume, verify, atomic) and checks
the header of what came: bytes that are no model file, or a model of another type than asked, are
refused and removed.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sdrest.models.detect import guess_kind
from sdrest.models.hashing import sha256_file
from sdrest.models.headers import HeaderError, read_header
from sdrest.models.hub.config import HubConfig
from sdrest.models.hub.errors import HubError
from sdrest.models.hub.remote import RemoteFile, resolve
from sdrest.models.hub.sources import Source
from sdrest.models.hub.transfer import FetchedFile, ProgressCallback, StopCallback, fetch, partial_path
from sdrest.models.types import ModelFolders, ModelType

__all__ = ["InstalledFile", "install", "safe_name", "target_for"]

#: Kinds guess_kind() reports that a folder of another type also takes (a UNet-only file in
#: checkpoints/, an ESRGAN among the upscalers).
_COMPATIBLE = {
    ModelType.CHECKPOINT: {"checkpoint", "diffusion_model"},
    ModelType.DIFFUSION_MODEL: {"diffusion_model", "checkpoint"},
    ModelType.UPSCALER: {"esrgan"},
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._ +()\[\]-]")
MAX_NAME = 200


@dataclass(frozen=True)
class InstalledFile:
    """Where a model went. ``skipped_existing``: an identical file was already there (no download).
    ``pickle``: a pickle-based file (flagged; sdrest never unpickles it)."""

    path: Path
    model_type: ModelType
    sha256: str
    size: int
    skipped_existing: bool
    pickle: bool


def safe_name(name: str) -> str:
    """``name`` as a plain file name: no folders, no hidden or control characters (HubError
    ``invalid_name`` when nothing usable is left)."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).lstrip(". ")
    if not base or base in (".", "..") or "." not in base.strip("."):
        raise HubError("invalid_name", f"{name[:120]!r} is not a usable model file name")
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        base = stem[: MAX_NAME - len(ext) - 1] + dot + ext
    return base


def target_for(name: str, model_type: ModelType, folders: ModelFolders) -> Path:
    """The path of ``name`` in the folder of ``model_type``, refused unless it has one of the
    type's extensions and stays inside that folder."""
    if not model_type.is_weights:
        raise HubError("wrong_type", f"{model_type.api_name} files are not downloaded from hubs")
    clean = safe_name(name)
    if not clean.lower().endswith(model_type.extensions):
        raise HubError(
            "wrong_type",
            f"{clean!r} is not a {model_type.api_name} file: its extension must be one of "
            f"{', '.join(model_type.extensions)}",
        )
    folder = folders.path(model_type).resolve()
    target = (folder / clean).resolve()
    if target.parent != folder:
        raise HubError("invalid_name", f"{name[:120]!r} would leave the {model_type.api_name} folder")
    return target


def _kind_of(path: Path) -> str | None:
    """What the file's header says it is (None: a model file of no kind we can tell)."""
    try:
        header = read_header(path)
    except HeaderError as exc:
        raise HubError("not_a_model", f"the downloaded file is no model file ({exc})") from None
    return guess_kind(header.tensors)


def _check_kind(path: Path, model_type: ModelType, name: str) -> None:
    kind = _kind_of(path)
    if kind is None:
        return
    allowed = _COMPATIBLE.get(model_type, {model_type.api_name})
    if kind not in allowed:
        raise HubError("wrong_type", f"{name} is a {kind} file, not a {model_type.api_name}")


def install(
    source: Source | str | RemoteFile,
    folders: ModelFolders,
    *,
    config: HubConfig,
    model_type: ModelType | None = None,
    sha256: str | None = None,
    name: str | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> InstalledFile:
    """Download ``source`` into its typed folder and return where it went. ``sha256``: the hash
    the bytes must have (over the hub's). ``name``: another file name. :class:`HubError` for every
    failure (nothing half-written is left in place; a partial file stays for a resume after a
    dropped connection or a cancel); :class:`SourceError` for a malformed source text."""
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise HubError("invalid_sha256", "the sha256 to check must be 64 hexadecimal digits")
    remote = source if isinstance(source, RemoteFile) else resolve(source, config)[0]
    file_name = name or remote.name
    wanted = model_type or remote.type_hint
    expected = (sha256 or remote.sha256 or "").lower() or None
    if wanted is None:
        return _install_untyped(remote, file_name, folders, config, expected, on_progress, should_stop)
    target = target_for(file_name, wanted, folders)
    if target.exists() and expected is not None:
        return _existing(target, wanted, expected, remote)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A file of that name whose hash nobody states (a plain URL): fetched aside, then compared.
    into = _staging(target.name, folders) if target.exists() else target
    fetched = fetch(
        remote,
        into,
        config=config,
        expected_sha256=expected,
        on_progress=on_progress,
        should_stop=should_stop,
        check=lambda partial: _check_kind(partial, wanted, target.name),
    )
    if into != target:
        try:
            return _existing(target, wanted, fetched.sha256, remote)
        finally:
            into.unlink(missing_ok=True)
    return _installed(fetched, wanted, remote)


def _staging(name: str, folders: ModelFolders) -> Path:
    """Where a download whose place is not known yet collects (hidden, in the models folder)."""
    root = folders.models_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root / f".{name}.download"


def _installed(fetched: FetchedFile, model_type: ModelType, remote: RemoteFile) -> InstalledFile:
    return InstalledFile(fetched.path, model_type, fetched.sha256, fetched.size, False, remote.pickle)


def _existing(target: Path, model_type: ModelType, expected: str | None, remote: RemoteFile) -> InstalledFile:
    if expected is not None and sha256_file(target) == expected:
        return InstalledFile(target, model_type, expected, target.stat().st_size, True, remote.pickle)
    raise HubError(
        "exists",
        f"{target.name} is already in {target.parent} with other or unknown content: remove it or choose another name",
    )


def _install_untyped(
    remote: RemoteFile,
    file_name: str,
    folders: ModelFolders,
    config: HubConfig,
    expected: str | None,
    on_progress: ProgressCallback | None,
    should_stop: StopCallback | None,
) -> InstalledFile:
    """No type given or stated: the bytes land in the models folder (hidden), the header names
    the type, and the file moves into that type's folder."""
    clean = safe_name(file_name)
    weights = {ext for t in ModelType.singles() if t.is_weights for ext in t.extensions}
    if not clean.lower().endswith(tuple(weights)):
        raise HubError("wrong_type", f"{clean!r} has no model file extension ({', '.join(sorted(weights))})")
    staging = _staging(clean, folders)
    found: dict[str, ModelType] = {}

    def decide(partial: Path) -> None:
        kind = _kind_of(partial)
        if kind is None:
            raise HubError("wrong_type", f"cannot tell what kind of model {clean} is: give its type")
        found["type"] = ModelType.from_name(kind)

    fetched = fetch(
        remote,
        staging,
        config=config,
        expected_sha256=expected,
        on_progress=on_progress,
        should_stop=should_stop,
        check=decide,
    )
    model_type = found["type"]
    try:
        target = target_for(clean, model_type, folders)
        if target.exists():
            return _existing(target, model_type, fetched.sha256, remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched.path, target)
    finally:
        staging.unlink(missing_ok=True)
        partial_path(staging).unlink(missing_ok=True)
    return InstalledFile(target, model_type, fetched.sha256, fetched.size, False, remote.pickle)
