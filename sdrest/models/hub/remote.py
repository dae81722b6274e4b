"""What a source points at: :func:`resolve` asks the hub (no bytes yet) and answers
:class:`RemoteFile` values: where to download, the size and sha256 the hub states, the type
the hub says (Civitai), and which token goes with it (only to its own endpoint).

Hugging Face goes through huggingface_hub (``hf_hub_url`` / ``get_hf_file_metadata``: revisions,
tokens, mirrors); Civitai through its REST API (``GET /api/v1/model-versions/{id}``); a plain URL
needs no lookup (its host policy is checked at each hop when it is fetched).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx2
from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from sdrest.models.hub.config import HubConfig
from sdrest.models.hub.errors import HubError
from sdrest.models.hub.sources import CivitaiSource, HfSource, Source, UrlSource, parse_source
from sdrest.models.types import ModelType

__all__ = ["PICKLE_EXTENSIONS", "RemoteFile", "resolve"]

#: Extensions of pickle-based files: allowed (users have them), flagged, never unpickled by us.
PICKLE_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")
#: The largest Civitai API answer read (a version's JSON is a few KB).
MAX_API_BYTES = 4 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: Civitai's model types (model.type) and file types (files[].type) -> ours.
_CIVITAI_TYPES = {
    "checkpoint": ModelType.CHECKPOINT,
    "lora": ModelType.LORA,
    "locon": ModelType.LORA,
    "dora": ModelType.LORA,
    "vae": ModelType.VAE,
    "textualinversion": ModelType.EMBEDDING,
    "controlnet": ModelType.CONTROLNET,
    "upscaler": ModelType.ESRGAN,
}


@dataclass(frozen=True)
class RemoteFile:
    """One file to download. ``size``/``sha256``: as the hub states them (None: unknown; Civitai's
    size is rounded to a KB and only used for the cap and the room check). ``auth``: whose token
    goes with the request, "hf" or "civitai" (sent only to that endpoint), or None. ``trusted``:
    a configured hub endpoint, whose redirects (to its CDN) are followed without the plain-URL
    host policy."""

    source: str
    name: str
    url: str
    size: int | None
    sha256: str | None
    type_hint: ModelType | None
    auth: str | None
    trusted: bool

    @property
    def pickle(self) -> bool:
        """A pickle-based file (.ckpt/.pt/.pth/.bin): flagged, never unpickled by sdrest."""
        return self.name.lower().endswith(PICKLE_EXTENSIONS)


def resolve(source: Source | str, config: HubConfig) -> list[RemoteFile]:
    """The file(s) ``source`` names, as the hub describes them. :class:`HubError` when the hub
    has no such file, refuses access or does not answer."""
    if isinstance(source, str):
        source = parse_source(source)
    if isinstance(source, HfSource):
        return [_resolve_hf(source, config)]
    if isinstance(source, CivitaiSource):
        return [_resolve_civitai(source, config)]
    return [_resolve_url(source, config)]


def _resolve_hf(source: HfSource, config: HubConfig) -> RemoteFile:
    label = source.text
    token: str | bool = config.hf_token or False  # False: never the token huggingface_hub may find on disk
    url = hf_hub_url(source.repo, source.path, revision=source.revision, endpoint=config.hf_endpoint)
    try:
        meta = get_hf_file_metadata(url, token=token, timeout=config.connect_timeout)
    except GatedRepoError:
        if config.hf_token:
            raise HubError(
                "gated",
                f"{source.repo} is gated and the Hugging Face token has no access to it: accept its terms on the "
                "Hub with the token's account",
            ) from None
        raise HubError(
            "gated", f"{source.repo} is a gated repository: set --hf-token or HF_TOKEN (a token with access)"
        ) from None
    except RevisionNotFoundError:
        raise HubError("not_found", f"{source.repo} has no revision {source.revision!r}") from None
    except RemoteEntryNotFoundError:
        raise HubError("not_found", f"{source.repo} has no file {source.path!r}") from None
    except RepositoryNotFoundError:
        hint = "" if config.hf_token else " (a private repository needs --hf-token or HF_TOKEN)"
        raise HubError("not_found", f"no Hugging Face repository {source.repo!r}{hint}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise HubError("unauthorized", "Hugging Face refused the token: check --hf-token or HF_TOKEN") from None
        raise HubError("bad_response", f"Hugging Face answered HTTP {status} for {label}") from None
    except (httpx2.HTTPError, OSError) as exc:
        raise HubError("unreachable", f"cannot reach {config.hf_endpoint} ({type(exc).__name__})") from None
    etag = (meta.etag or "").lower()
    # The download names the commit, so that a resume after a restart gets the same bytes.
    revision = meta.commit_hash or source.revision
    return RemoteFile(
        source=label,
        name=source.file_name,
        url=hf_hub_url(source.repo, source.path, revision=revision, endpoint=config.hf_endpoint),
        size=meta.size,
        sha256=etag if _SHA256.fullmatch(etag) else None,
        type_hint=None,
        auth="hf",
        trusted=True,
    )


def _civitai_get(path: str, config: HubConfig, what: str) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if config.civitai_token:
        headers["Authorization"] = f"Bearer {config.civitai_token}"
    url = f"{config.civitai_endpoint}{path}"
    timeout = httpx2.Timeout(config.read_timeout, connect=config.connect_timeout)
    try:
        with httpx2.Client(timeout=timeout, trust_env=False) as client, client.stream("GET", url, headers=headers) as r:
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_API_BYTES:
                    raise HubError("bad_response", f"Civitai's answer for {what} is larger than {MAX_API_BYTES} bytes")
            status = r.status_code
    except httpx2.HTTPError as exc:
        raise HubError("unreachable", f"cannot reach {config.civitai_endpoint} ({type(exc).__name__})") from None
    if status == 404:
        raise HubError("not_found", f"Civitai has no {what}")
    if status in (401, 403):
        if config.civitai_token:
            raise HubError("unauthorized", f"Civitai refused the token for {what}: check --civitai-token")
        raise HubError("unauthorized", f"{what} needs a Civitai sign-in: set --civitai-token")
    if status != 200:
        raise HubError("bad_response", f"Civitai answered HTTP {status} for {what}")
    try:
        value = json.loads(body)
    except ValueError:
        raise HubError("bad_response", f"Civitai's answer for {what} is not JSON") from None
    if not isinstance(value, dict):
        raise HubError("bad_response", f"Civitai's answer for {what} is not an object")
    return value


def _resolve_civitai(source: CivitaiSource, config: HubConfig) -> RemoteFile:
    version_id = source.version_id
    if version_id is None:
        model = _civitai_get(f"/api/v1/models/{source.model_id}", config, f"model {source.model_id}")
        versions = model.get("modelVersions")
        if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
            raise HubError("not_found", f"Civitai model {source.model_id} has no version")
        version_id = versions[0].get("id")
        if not isinstance(version_id, int):
            raise HubError("bad_response", f"Civitai model {source.model_id}'s newest version has no id")
    what = f"model version {version_id}"
    version = _civitai_get(f"/api/v1/model-versions/{version_id}", config, what)
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    if source.file_type is not None:
        chosen = next((f for f in files if str(f.get("type", "")).lower() == source.file_type.lower()), None)
    else:
        chosen = next((f for f in files if f.get("primary")), None) or next(
            (f for f in files if f.get("type") == "Model"), files[0] if files else None
        )
    if chosen is None:
        kind = f"a {source.file_type} file" if source.file_type else "a file"
        raise HubError("not_found", f"Civitai {what} has no {kind}")
    name = chosen.get("name")
    if not isinstance(name, str) or not name:
        raise HubError("bad_response", f"Civitai {what} lists a file without a name")
    size_kb = chosen.get("sizeKB")
    hashes = chosen.get("hashes")
    sha256 = str(hashes.get("SHA256", "")).lower() if isinstance(hashes, dict) else ""
    model_view = version.get("model")
    model_type = str(model_view.get("type", "")) if isinstance(model_view, dict) else ""
    file_type = str(chosen.get("type", ""))
    type_hint = _CIVITAI_TYPES.get(file_type.lower()) if file_type.lower() == "vae" else None
    type_hint = type_hint or _CIVITAI_TYPES.get(model_type.lower())
    url = f"{config.civitai_endpoint}/api/download/models/{version_id}"
    if not chosen.get("primary") and file_type:
        url += "?" + urllib.parse.urlencode({"type": file_type})
    text = CivitaiSource(version_id, None, source.file_type).text
    return RemoteFile(
        source=text,
        name=name,
        url=url,
        size=round(size_kb * 1024) if isinstance(size_kb, (int, float)) and size_kb >= 0 else None,
        sha256=sha256 if _SHA256.fullmatch(sha256) else None,
        type_hint=type_hint,
        auth="civitai",
        trusted=True,
    )


def _resolve_url(source: UrlSource, config: HubConfig) -> RemoteFile:
    if config.download_hosts == "off":
        raise HubError("host_not_allowed", "downloads from plain URLs are off on this server (--download-hosts)")
    return RemoteFile(
        source=source.text,
        name=source.file_name,
        url=source.url,
        size=None,
        sha256=None,
        type_hint=None,
        auth=None,
        trusted=False,
    )
