"""Where a model comes from: the one syntax of model sources (CLI, API and UI parse it here).

- ``hf:OWNER/REPO/PATH/IN/REPO[@REVISION]``, or a pasted
  ``https://huggingface.co/OWNER/REPO/(blob|resolve)/REVISION/PATH``: a file of a Hugging Face repository;
- ``civitai:MODEL_VERSION_ID``, or a pasted ``https://civitai.com/models/ID[?modelVersionId=V]``
  (without a version: the model's newest one) or ``https://civitai.com/api/download/models/V[?type=T]``;
- any other ``https://`` (or ``http://``) URL: a plain file. Whether its host may be reached is the
  download host policy's business (``--download-hosts``), checked when it is fetched.

Each parsed :class:`Source` has ``text``, its canonical spelling, which parses back to the same source.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from sdrest.errors import SdrestError

__all__ = ["CivitaiSource", "HfSource", "Source", "SourceError", "UrlSource", "parse_source"]

#: The longest source accepted (a URL longer than this is not a model link).
MAX_SOURCE_LENGTH = 2048

_HF_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
_CIVITAI_HOSTS = ("civitai.com", "www.civitai.com")
_HF_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,255}")
_CIVITAI_FILE_TYPE = re.compile(r"[A-Za-z][A-Za-z ]{0,31}")
_SYNTAX = "expected hf:OWNER/REPO/PATH[@REVISION], civitai:MODEL_VERSION_ID or an https:// URL"


class SourceError(SdrestError, ValueError):
    """A source that cannot be parsed; the message names the problem and the accepted syntax."""


@dataclass(frozen=True)
class HfSource:
    """A file of a Hugging Face repository. ``revision``: a branch, tag or commit (None: main)."""

    repo: str
    path: str
    revision: str | None = None

    @property
    def text(self) -> str:
        base = f"hf:{self.repo}/{self.path}"
        return f"{base}@{self.revision}" if self.revision else base

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CivitaiSource:
    """A Civitai model version (``version_id``), or a model's newest version (``model_id`` only).
    ``file_type``: which of the version's files (Civitai's file type, e.g. "VAE"; None: the primary one)."""

    version_id: int | None
    model_id: int | None = None
    file_type: str | None = None

    @property
    def text(self) -> str:
        if self.version_id is None:
            return f"https://civitai.com/models/{self.model_id}"
        if self.file_type is not None:
            query = urllib.parse.urlencode({"type": self.file_type})
            return f"https://civitai.com/api/download/models/{self.version_id}?{query}"
        return f"civitai:{self.version_id}"


@dataclass(frozen=True)
class UrlSource:
    """A plain file at an http(s) URL."""

    url: str

    @property
    def text(self) -> str:
        return self.url

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def file_name(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])


Source = HfSource | CivitaiSource | UrlSource


def parse_source(text: str) -> Source:
    """The source ``text`` names (:class:`SourceError` naming the problem when it is malformed)."""
    if not isinstance(text, str):
        raise SourceError(f"a source must be a string; {_SYNTAX}")
    text = text.strip()
    if not text:
        raise SourceError(f"empty source; {_SYNTAX}")
    if len(text) > MAX_SOURCE_LENGTH:
        raise SourceError(f"source longer than {MAX_SOURCE_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace() for ch in text):
        raise SourceError("a source must not contain spaces or control characters")
    lowered = text.lower()
    if lowered.startswith("hf:"):
        return _hf_short(text[3:])
    if lowered.startswith("civitai:"):
        return _civitai_short(text[8:])
    if lowered.startswith(("https://", "http://")):
        return _url(text)
    scheme = text.split(":", 1)[0] if ":" in text else ""
    if scheme and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise SourceError(f"unsupported source scheme {scheme!r}; {_SYNTAX}")
    raise SourceError(f"unrecognised source {text[:80]!r}; {_SYNTAX}")


def _hf_short(rest: str) -> HfSource:
    revision: str | None = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
        if not revision:
            raise SourceError("hf: source has an empty revision after '@'")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts[:2]):
        raise SourceError(f"hf: source {('hf:' + rest)[:120]!r} must be hf:OWNER/REPO/PATH[@REVISION]")
    return _hf(parts[0], parts[1], "/".join(parts[2:]), revision)


def _hf(owner: str, name: str, path: str, revision: str | None) -> HfSource:
    for label, part in (("owner", owner), ("repository name", name)):
        if not _HF_NAME.fullmatch(part) or ".." in part:
            raise SourceError(f"invalid Hugging Face {label} {part!r} (letters, digits, '.', '_' and '-')")
    if revision is not None and (not _REVISION.fullmatch(revision) or ".." in revision):
        raise SourceError(f"invalid revision {revision[:80]!r} (a branch, tag or commit hash)")
    return HfSource(f"{owner}/{name}", _repo_path(path), revision)


def _repo_path(path: str) -> str:
    if not path:
        raise SourceError("the source names no file in the repository")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace() for ch in path):
        raise SourceError(f"invalid path {path[:120]!r} in the repository: spaces or control characters")
    if "\\" in path:
        raise SourceError(f"invalid path {path[:120]!r} in the repository: backslashes are not allowed")
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise SourceError(f"invalid path {path[:120]!r} in the repository: empty, '.' or '..' parts")
    return path


def _civitai_short(rest: str) -> CivitaiSource:
    if not rest.isdigit() or not rest.isascii():
        raise SourceError(f"civitai: source needs a numeric model version id, got {rest[:40]!r}")
    return CivitaiSource(_positive(rest, "model version id"))


def _positive(digits: str, what: str) -> int:
    value = int(digits)
    if value <= 0 or len(digits) > 12:
        raise SourceError(f"invalid Civitai {what} {digits[:20]!r}")
    return value


def _url(text: str) -> Source:
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise SourceError(f"malformed URL {text[:120]!r}: {exc}") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise SourceError(f"URL has no host: {text[:120]!r}")
    if parts.username is not None or parts.password is not None:
        raise SourceError("credentials in a source URL are not accepted: set the hub token settings instead")
    if host in _HF_HOSTS and parts.scheme.lower() == "https":
        return _hf_url(parts)
    if host in _CIVITAI_HOSTS and parts.scheme.lower() == "https":
        return _civitai_url(parts)
    if not parts.path or parts.path.endswith("/"):
        raise SourceError(f"URL {text[:120]!r} names no file")
    return UrlSource(urllib.parse.urlunsplit(parts._replace(fragment="")))


def _hf_url(parts: urllib.parse.SplitResult) -> HfSource:
    segments = parts.path.split("/")[1:]
    if len(segments) < 5 or segments[2] not in ("blob", "resolve"):
        raise SourceError(
            "a Hugging Face URL must be https://huggingface.co/OWNER/REPO/blob/REVISION/PATH (or /resolve/)"
        )
    owner, name, _kind, revision = segments[:4]
    path = urllib.parse.unquote("/".join(segments[4:]))
    return _hf(owner, name, path, urllib.parse.unquote(revision))


def _civitai_url(parts: urllib.parse.SplitResult) -> CivitaiSource:
    query = urllib.parse.parse_qs(parts.query)
    if match := re.fullmatch(r"/models/([0-9]+)(?:/[^/]*)?/?", parts.path):
        model_id = _positive(match[1], "model id")
        versions = query.get("modelVersionId", [])
        if not versions:
            return CivitaiSource(None, model_id)
        if not (versions[0].isascii() and versions[0].isdigit()):
            raise SourceError(f"modelVersionId must be a number, got {versions[0][:20]!r}")
        return CivitaiSource(_positive(versions[0], "model version id"))
    if match := re.fullmatch(r"/api/download/models/([0-9]+)/?", parts.path):
        file_type = query.get("type", [None])[0]
        if file_type is not None and not _CIVITAI_FILE_TYPE.fullmatch(file_type):
            raise SourceError(f"invalid Civitai file type {file_type[:40]!r}")
        return CivitaiSource(_positive(match[1], "model version id"), None, file_type)
    raise SourceError(
        "a Civitai URL must be https://civitai.com/models/ID[?modelVersionId=V] "
        "or https://civitai.com/api/download/models/V"
    )
