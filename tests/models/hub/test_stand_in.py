"""The hub stand-in (tests/hubs.py) answers the real clients as the hubs do: huggingface_hub
downloads from it and maps its errors to its own exceptions; Civitai's JSON and redirects; faults."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pytest
from hubs import CivitaiFile, Faults, Hubs, hubs
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

__all__ = ["hubs"]

DATA = bytes(range(256)) * 40


def test_huggingface_hub_downloads_through_the_cdn_on_another_host(hubs: Hubs, tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "sub/model.safetensors", DATA)
    path = hf_hub_download(
        "owner/repo", "sub/model.safetensors", local_dir=tmp_path, endpoint=hubs.hf_endpoint, token=False
    )
    assert Path(path).read_bytes() == DATA
    meta = get_hf_file_metadata(
        hf_hub_url("owner/repo", "sub/model.safetensors", endpoint=hubs.hf_endpoint), token=False
    )
    assert meta.etag == hashlib.sha256(DATA).hexdigest()
    assert meta.size == len(DATA)
    assert meta.commit_hash == hubs.hf_commit("owner/repo")
    assert {r.host.split(":")[0] for r in hubs.requests_to("cdn")} == {"localhost"}


def test_huggingface_hub_errors_map_to_its_exceptions(hubs: Hubs, tmp_path: Path) -> None:
    hubs.add_hf_file("owner/repo", "a.safetensors", DATA)
    hubs.add_hf_file("owner/gated", "a.safetensors", DATA, gated=True)

    def meta(repo: str, name: str, token: str | bool = False, revision: str | None = None) -> object:
        url = hf_hub_url(repo, name, revision=revision, endpoint=hubs.hf_endpoint)
        return get_hf_file_metadata(url, token=token)

    with pytest.raises(RepositoryNotFoundError):
        meta("owner/nothing", "a.safetensors")
    with pytest.raises(RemoteEntryNotFoundError):
        meta("owner/repo", "b.safetensors")
    with pytest.raises(RevisionNotFoundError):
        meta("owner/repo", "a.safetensors", revision="v9")
    with pytest.raises(GatedRepoError):
        meta("owner/gated", "a.safetensors")
    with pytest.raises(HfHubHTTPError) as wrong:
        meta("owner/gated", "a.safetensors", token="hf_wrong")
    assert wrong.value.response.status_code == 401
    assert meta("owner/gated", "a.safetensors", token="hf_stand_in_token") is not None
    assert meta("owner/repo", "a.safetensors", revision=hubs.hf_commit("owner/repo")) is not None


def test_cdn_answers_ranges_and_drops_as_told(hubs: Hubs) -> None:
    url = hubs.add_url_file("m.safetensors", DATA, faults=Faults(drop_after=100, drop_times=1))
    with httpx2.Client() as client:
        with pytest.raises(httpx2.HTTPError):
            client.get(url).read()
        ranged = client.get(url, headers={"Range": "bytes=1000-"})
        assert ranged.status_code == 206
        assert ranged.headers["Content-Range"] == f"bytes 1000-{len(DATA) - 1}/{len(DATA)}"
        assert ranged.content == DATA[1000:]
    assert [r.range for r in hubs.requests_to("cdn")] == [None, "bytes=1000-"]


def test_civitai_version_download_and_sign_in(hubs: Hubs) -> None:
    hubs.add_civitai_version(7, [CivitaiFile("m.safetensors", DATA), CivitaiFile("v.safetensors", b"vae", "VAE")])
    hubs.add_civitai_version(8, [CivitaiFile("p.safetensors", DATA)], sign_in=True)
    with httpx2.Client(follow_redirects=True) as client:
        version = client.get(f"{hubs.civitai_endpoint}/api/v1/model-versions/7").json()
        assert version["model"]["type"] == "Checkpoint"
        first, second = version["files"]
        assert first["hashes"]["SHA256"] == hashlib.sha256(DATA).hexdigest().upper()
        assert client.get(first["downloadUrl"]).content == DATA
        assert client.get(second["downloadUrl"]).content == b"vae"
        model = client.get(f"{hubs.civitai_endpoint}/api/v1/models/100007").json()
        assert model["modelVersions"][0]["id"] == 7
        assert client.get(f"{hubs.civitai_endpoint}/api/v1/model-versions/9").status_code == 404
        assert client.get(f"{hubs.civitai_endpoint}/api/v1/model-versions/8").status_code == 401
        assert client.get(f"{hubs.civitai_endpoint}/api/download/models/8").status_code == 401
        signed = {"Authorization": "Bearer civitai_stand_in_token"}
        assert client.get(f"{hubs.civitai_endpoint}/api/download/models/8", headers=signed).content == DATA


def test_html_and_lying_hash_faults(hubs: Hubs) -> None:
    url = hubs.add_url_file("page", DATA, faults=Faults(html=True))
    stored = hubs.add_hf_file("owner/repo", "x.safetensors", DATA, faults=Faults(wrong_sha256=True))
    assert stored.sha256 != hashlib.sha256(DATA).hexdigest()
    with httpx2.Client() as client:
        page = client.get(url)
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.content.startswith(b"<!DOCTYPE html>")
