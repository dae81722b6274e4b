"""A local stand-in for the model hubs on loopback: Hugging Face (and its CDN) and Civitai.

Three real HTTP servers (standard library, one thread per connection):

- ``hf_endpoint`` (``http://127.0.0.1:P``), for ``HF_ENDPOINT`` / ``--hf-endpoint``: ``HEAD``/``GET
  /{owner}/{repo}/resolve/{revision}/{path}`` answer as the Hub answers an LFS file: a ``302`` to
  the CDN carrying ``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256, quoted), ``X-Linked-Size`` and
  ``ETag``. Errors carry the ``X-Error-Code`` / ``X-Error-Message`` headers huggingface_hub maps to
  its exceptions (``huggingface_hub.utils._http.hf_raise_for_status``): ``RepoNotFound`` (404, an
  unknown repository), ``RevisionNotFound`` (404), ``EntryNotFound`` (404, an unknown file),
  ``GatedRepo`` (401, a gated repository without a token) and 401 "Invalid credentials in
  Authorization header" (a token the stand-in does not know, as the Hub answers any request with
  a bad token).
- ``civitai_endpoint`` (``http://127.0.0.1:Q``), for ``--civitai-endpoint``: ``GET
  /api/v1/model-versions/{id}`` (the version: ``files[]`` with ``name``, ``sizeKB``, ``type``,
  ``hashes.SHA256``, ``downloadUrl``; ``model.type``; ``baseModel``), ``GET /api/v1/models/{id}``
  (the model with its ``modelVersions``, newest first) and ``GET /api/download/models/{id}[?type=T]``
  (a ``302`` to storage on the CDN). A version that needs sign-in answers 401 to both without a
  known ``Authorization: Bearer`` token; an unknown one 404.
- the CDN (``cdn_url``, ``http://localhost:R``): the bytes, with ``Range`` (206 and
  ``Content-Range``), plus plain files for plain-URL downloads (:meth:`Hubs.add_url_file`) and
  redirects (:meth:`Hubs.add_redirect`). It listens on 127.0.0.1 but is addressed as ``localhost``,
  another host name: huggingface_hub reads the metadata from the 302 only when the redirect leaves
  the Hub's host (REFERENCE.md "Model hubs"), and a token sent to the CDN shows in :attr:`Hubs.requests`.

Faults (:class:`Faults`, per file, applied to the CDN's answers): drop the connection after N bytes
(K times, then serve normally), answer an HTML page instead, advertise a wrong sha256, declare
another size. Every request is recorded (:class:`Recorded`: server, method, path, host, Range,
Authorization).

Use it as a context manager (``with Hubs() as hubs: ...``) or as the pytest fixture ``hubs``
(``from hubs import hubs``); servers in other processes get :meth:`Hubs.env` or :meth:`Hubs.args`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: An HTML page, what a login wall or an error page of a file host answers instead of a model.
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in.</body></html>\n"


@dataclass
class Faults:
    """How the CDN misbehaves for one file. ``drop_after``: close the connection after sending this
    many bytes of the body (counted from the start of the answer, a range answer included), for
    the first ``drop_times`` GETs (then the file is served whole). ``html``: answer a 200 HTML page.
    ``wrong_sha256``: the hub advertises a sha256 of other bytes. ``declared_size``: the size the
    hub advertises (and the CDN's ``Content-Length``; the connection closes after the real bytes)."""

    drop_after: int | None = None
    drop_times: int = 1
    html: bool = False
    wrong_sha256: bool = False
    declared_size: int | None = None
    #: Stall every GET after sending this many bytes of the body, until ``release`` is set (a slow
    #: hub: lets a test see a download in progress, cancel it or kill the server in the middle).
    hold_after: int | None = None
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class StoredFile:
    """One file the stand-in serves."""

    data: bytes
    faults: Faults = field(default_factory=Faults)
    content_type: str = "application/octet-stream"
    gets: int = 0  # GETs of the bytes answered so far (for drop_times)

    @property
    def sha256(self) -> str:
        """The sha256 the hub advertises (a wrong one under ``wrong_sha256``)."""
        data = self.data + b"lie" if self.faults.wrong_sha256 else self.data
        return hashlib.sha256(data).hexdigest()

    @property
    def real_sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        """The size the hub advertises."""
        return self.faults.declared_size if self.faults.declared_size is not None else len(self.data)


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in saw it. ``server``: "hf", "civitai" or "cdn"; ``authorization``:
    the header's value (``None`` when absent)."""

    server: str
    method: str
    path: str
    host: str
    range: str | None
    authorization: str | None


@dataclass
class _HfRepo:
    gated: bool = False
    revisions: dict[str, dict[str, StoredFile]] = field(default_factory=dict)  # name -> path -> file


@dataclass
class CivitaiFile:
    """A file of a Civitai model version. ``type``: Civitai's file type ("Model", "VAE", "Config",
    ...); the first file is the primary one."""

    name: str
    data: bytes
    type: str = "Model"
    faults: Faults = field(default_factory=Faults)


@dataclass
class _CivitaiVersion:
    id: int
    model_id: int
    model_name: str
    model_type: str
    base_model: str
    sign_in: bool
    files: list[tuple[CivitaiFile, StoredFile]]


def _commit(repo: str, revision: str) -> str:
    """The 40-hex commit a revision name stands for (stable: derived from the names)."""
    return hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()


class Hubs:
    """The three servers and what they serve. Add files before (or while) the code under test asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hf: dict[str, _HfRepo] = {}
        self._versions: dict[int, _CivitaiVersion] = {}
        self._cdn: dict[str, StoredFile] = {}  # CDN path -> file
        self._redirects: dict[str, str] = {}  # CDN path -> Location
        self.requests: list[Recorded] = []
        #: Tokens the Hugging Face stand-in accepts (they open gated repositories).
        self.hf_tokens: set[str] = {"hf_stand_in_token"}
        #: Bearer tokens the Civitai stand-in accepts.
        self.civitai_tokens: set[str] = {"civitai_stand_in_token"}
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.hf_endpoint = ""
        self.civitai_endpoint = ""
        self.cdn_url = ""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Hubs:
        ports = [self._serve(name) for name in ("hf", "civitai", "cdn")]
        self.hf_endpoint = f"http://127.0.0.1:{ports[0]}"
        self.civitai_endpoint = f"http://127.0.0.1:{ports[1]}"
        self.cdn_url = f"http://localhost:{ports[2]}"
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Hubs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables that point a server in another process at the stand-in."""
        return {"HF_ENDPOINT": self.hf_endpoint, "SDREST_CIVITAI_ENDPOINT": self.civitai_endpoint}

    def args(self) -> list[str]:
        """Command-line options that point ``sdrest`` at the stand-in."""
        return ["--hf-endpoint", self.hf_endpoint, "--civitai-endpoint", self.civitai_endpoint]

    def _serve(self, name: str) -> int:
        hubs = self

        class Handler(_Handler):
            server_name_ = name
            stand_in = hubs

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        # A short poll interval: stop() (shutdown) waits for one poll of each server.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"hubs-{name}", daemon=True
        )
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return int(server.server_address[1])

    # -- content ----------------------------------------------------------------------------

    def add_hf_file(
        self,
        repo: str,
        path: str,
        data: bytes,
        *,
        revision: str = "main",
        gated: bool = False,
        faults: Faults | None = None,
    ) -> StoredFile:
        """Serve ``data`` as ``path`` of the Hugging Face repository ``repo`` ("owner/name") at
        ``revision`` (a branch name; its commit is :meth:`hf_commit`). ``gated`` marks the whole
        repository gated."""
        stored = StoredFile(data, faults or Faults())
        with self._lock:
            entry = self._hf.setdefault(repo, _HfRepo())
            entry.gated = entry.gated or gated
            entry.revisions.setdefault(revision, {})[path] = stored
            self._cdn[f"/hf/{repo}/{_commit(repo, revision)}/{path}"] = stored
        return stored

    def hf_commit(self, repo: str, revision: str = "main") -> str:
        """The commit hash ``revision`` of ``repo`` stands for (also accepted as a revision)."""
        return _commit(repo, revision)

    def add_civitai_version(
        self,
        version_id: int,
        files: list[CivitaiFile],
        *,
        model_type: str = "Checkpoint",
        base_model: str = "SD 1.5",
        model_id: int | None = None,
        model_name: str = "Stand-in model",
        sign_in: bool = False,
    ) -> None:
        """Serve a Civitai model version (``model_type``: Civitai's "Checkpoint", "LORA", "VAE",
        "TextualInversion", "Controlnet", "Upscaler", ...). ``sign_in``: it answers 401 without a
        known Bearer token. ``model_id`` defaults to ``version_id + 100000``."""
        stored_files = []
        with self._lock:
            for item in files:
                stored = StoredFile(item.data, item.faults)
                stored_files.append((item, stored))
                self._cdn[f"/civitai/{version_id}/{item.name}"] = stored
            self._versions[version_id] = _CivitaiVersion(
                version_id,
                model_id if model_id is not None else version_id + 100000,
                model_name,
                model_type,
                base_model,
                sign_in,
                stored_files,
            )

    def add_url_file(
        self, path: str, data: bytes, *, content_type: str = "application/octet-stream", faults: Faults | None = None
    ) -> str:
        """Serve ``data`` on the CDN at ``/files/{path}``; returns its URL (a plain-URL source)."""
        stored = StoredFile(data, faults or Faults(), content_type)
        with self._lock:
            self._cdn[f"/files/{path}"] = stored
        return f"{self.cdn_url}/files/{path}"

    def add_redirect(self, path: str, location: str) -> str:
        """Answer ``/redirect/{path}`` on the CDN with a 302 to ``location``; returns its URL."""
        with self._lock:
            self._redirects[f"/redirect/{path}"] = location
        return f"{self.cdn_url}/redirect/{path}"

    # -- what was asked ---------------------------------------------------------------------

    def requests_to(self, server: str, method: str | None = None) -> list[Recorded]:
        """The requests one server ("hf", "civitai", "cdn") saw, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.server == server and (method is None or r.method == method)]

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    # -- answers ----------------------------------------------------------------------------

    def _hf_answer(self, handler: _Handler, path: str) -> None:
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match is None:
            handler.error(404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return
        repo, revision, file_path = match[1], urllib.parse.unquote(match[2]), match[3]
        token = _bearer(handler.headers.get("Authorization"))
        if token is not None and token not in self.hf_tokens:
            handler.error(401, {"X-Error-Message": "Invalid credentials in Authorization header"})
            return
        with self._lock:
            entry = self._hf.get(repo)
        if entry is None:
            handler.error(404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return
        if entry.gated and token is None:
            message = (
                f"Access to model {repo} is restricted. You must have access to it and be authenticated to access "
                "it. Please log in."
            )
            handler.error(401, {"X-Error-Code": "GatedRepo", "X-Error-Message": message})
            return
        name = next((n for n in entry.revisions if revision in (n, _commit(repo, n))), None)
        if name is None:
            handler.error(404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"})
            return
        stored = entry.revisions[name].get(file_path)
        if stored is None:
            handler.error(404, {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
            return
        commit = _commit(repo, name)
        handler.send_response(302)
        handler.send_header("Location", f"{self.cdn_url}/hf/{repo}/{commit}/{file_path}")
        handler.send_header("X-Repo-Commit", commit)
        handler.send_header("X-Linked-Etag", f'"{stored.sha256}"')
        handler.send_header("X-Linked-Size", str(stored.size))
        handler.send_header("ETag", f'"{hashlib.sha1(stored.data).hexdigest()}"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _civitai_answer(self, handler: _Handler, path: str, query: dict[str, list[str]]) -> None:
        token = _bearer(handler.headers.get("Authorization"))
        signed_in = token is not None and token in self.civitai_tokens
        if match := re.fullmatch(r"/api/v1/model-versions/(\d+)", path):
            version = self._versions.get(int(match[1]))
            if version is None:
                handler.json(404, {"error": f"No model version with id {match[1]}"})
            elif version.sign_in and not signed_in:
                handler.json(401, {"error": "Unauthorized", "message": "You must be logged in to access this"})
            else:
                handler.json(200, self._version_view(version))
            return
        if match := re.fullmatch(r"/api/v1/models/(\d+)", path):
            found = sorted((v for v in self._versions.values() if v.model_id == int(match[1])), key=lambda v: -v.id)
            if not found:
                handler.json(404, {"error": f"No model with id {match[1]}"})
                return
            view = {
                "id": found[0].model_id,
                "name": found[0].model_name,
                "type": found[0].model_type,
                "modelVersions": [self._version_view(v) for v in found],
            }
            handler.json(200, view)
            return
        if match := re.fullmatch(r"/api/download/models/(\d+)", path):
            version = self._versions.get(int(match[1]))
            if version is None:
                handler.json(404, {"error": f"No model version with id {match[1]}"})
                return
            if version.sign_in and not signed_in:
                message = "The creator of this asset requires you to be logged in to download it"
                handler.json(401, {"error": "Unauthorized", "message": message})
                return
            wanted = query.get("type", [None])[0]
            item = next((f for f, _ in version.files if wanted is None or f.type == wanted), None)
            if item is None:
                handler.json(404, {"error": "No file of that type"})
                return
            handler.send_response(307)
            handler.send_header("Location", f"{self.cdn_url}/civitai/{version.id}/{urllib.parse.quote(item.name)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.json(404, {"error": "Not found"})

    def _version_view(self, version: _CivitaiVersion) -> dict[str, Any]:
        files = []
        for index, (item, stored) in enumerate(version.files):
            url = f"{self.civitai_endpoint}/api/download/models/{version.id}"
            files.append(
                {
                    "id": version.id * 10 + index,
                    "name": item.name,
                    "sizeKB": stored.size / 1024,
                    "type": item.type,
                    "primary": index == 0,
                    "hashes": {"SHA256": stored.sha256.upper(), "CRC32": "00000000"},
                    "downloadUrl": url if index == 0 else f"{url}?type={urllib.parse.quote(item.type)}",
                }
            )
        return {
            "id": version.id,
            "modelId": version.model_id,
            "name": "v1",
            "baseModel": version.base_model,
            "model": {"name": version.model_name, "type": version.model_type, "nsfw": False},
            "files": files,
            "downloadUrl": f"{self.civitai_endpoint}/api/download/models/{version.id}",
        }

    def _cdn_answer(self, handler: _Handler, path: str, method: str) -> None:
        with self._lock:
            location = self._redirects.get(path)
            stored = self._cdn.get(urllib.parse.unquote(path))
        if location is not None:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if stored is None:
            handler.json(404, {"error": "Not found"})
            return
        if stored.faults.html:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            handler.send_header("Content-Length", str(len(HTML_PAGE)))
            handler.end_headers()
            if method == "GET":
                handler.wfile.write(HTML_PAGE)
            return
        data = stored.data
        start, status = 0, 200
        requested = handler.headers.get("Range")
        if requested is not None:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", requested.strip())
            if match is None or int(match[1]) >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            start = int(match[1])
            end = min(int(match[2]), len(data) - 1) if match[2] else len(data) - 1
            data, status = data[start : end + 1], 206
        length = stored.size if requested is None else len(data)  # a declared size, whatever the bytes
        handler.send_response(status)
        handler.send_header("Content-Type", stored.content_type)
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(length))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{start + len(data) - 1}/{len(stored.data)}")
        handler.end_headers()
        if method != "GET":
            return
        with self._lock:
            stored.gets += 1
            drop = stored.faults.drop_after is not None and stored.gets <= stored.faults.drop_times
        if drop:
            assert stored.faults.drop_after is not None
            handler.wfile.write(data[: stored.faults.drop_after])
            handler.wfile.flush()
            handler.drop()
            return
        hold = stored.faults.hold_after
        if hold is not None and not stored.faults.release.is_set() and hold < length:
            handler.wfile.write(data[:hold])
            handler.wfile.flush()
            stored.faults.release.wait(60)
            data, length = data[hold:], length - hold
        handler.wfile.write(data[:length])
        if length != len(data):
            handler.wfile.flush()
            handler.drop()


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else header


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_ = ""
    stand_in: Hubs

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests assert on Hubs.requests

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_GET(self) -> None:
        self._answer("GET")

    def _answer(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.stand_in._record(
            Recorded(
                self.server_name_,
                method,
                parts.path,
                self.headers.get("Host", ""),
                self.headers.get("Range"),
                self.headers.get("Authorization"),
            )
        )
        if self.server_name_ == "hf":
            self.stand_in._hf_answer(self, parts.path)
        elif self.server_name_ == "civitai":
            self.stand_in._civitai_answer(self, parts.path, urllib.parse.parse_qs(parts.query))
        else:
            self.stand_in._cdn_answer(self, parts.path, method)

    def error(self, status: int, headers: dict[str, str]) -> None:
        body = json.dumps({"error": headers.get("X-Error-Message", "error")}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def json(self, status: int, value: object) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def drop(self) -> None:
        """Cut the connection mid-answer (as a hub going away does)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def hubs() -> Iterator[Hubs]:
    """A started :class:`Hubs` for one test."""
    with Hubs() as stand_in:
        yield stand_in
