"""Models from the hubs: Hugging Face, Civitai and plain URLs (issue 20).

The public API (stable; the download lane, the CLI and the recipes call it):

- ``parse_source(text) -> Source`` (``HfSource | CivitaiSource | UrlSource``; ``SourceError``, a
  ``ValueError``, names what is malformed). ``Source.text`` is the canonical spelling.
- ``HubConfig``: endpoints, tokens, host policy, size cap, timeouts, retries
  (``HubConfig.from_settings(settings)``).
- ``resolve(source, config) -> list[RemoteFile]``: what the hub says about the file (size, sha256,
  type), no bytes yet.
- ``fetch(remote, target, *, config, expected_sha256, on_progress, should_stop) -> FetchedFile``:
  the download itself (partial file, resume, verify, atomic rename, room, host policy).
- ``install(source, folders, *, config, model_type, sha256, name, on_progress, should_stop) ->
  InstalledFile``: resolve + the typed folder + fetch + the header check; the one code path.
- Every failure is a ``HubError`` with a stable ``code`` (errors.CODES) and a message that names
  the fix and never holds a token.

``on_progress(done, total, bytes_per_second)`` is called at most every 0.25 s and at the end;
``should_stop()`` is asked between chunks, so a caller in another thread cancels within a second.
"""

from sdrest.models.hub.config import HubConfig
from sdrest.models.hub.errors import HubError
from sdrest.models.hub.install import InstalledFile, install
from sdrest.models.hub.remote import RemoteFile, resolve
from sdrest.models.hub.sources import CivitaiSource, HfSource, Source, SourceError, UrlSource, parse_source
from sdrest.models.hub.transfer import FetchedFile, fetch, partial_path

__all__ = [
    "CivitaiSource",
    "FetchedFile",
    "HfSource",
    "HubConfig",
    "HubError",
    "InstalledFile",
    "RemoteFile",
    "Source",
    "SourceError",
    "UrlSource",
    "fetch",
    "install",
    "parse_source",
    "partial_path",
    "resolve",
]
