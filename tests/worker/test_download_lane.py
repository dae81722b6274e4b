"""The download lane's own rules, in-process on a real SQLite store (the API tests run it in the
server): what a cancel of a download that waits to resume removes."""

from __future__ import annotations

from pathlib import Path

from sdrest.jobs import EventBus, SqliteJobStore
from sdrest.jobs.downloads import DownloadFile, DownloadStatus
from sdrest.models.hub import HubConfig
from sdrest.models.scanner import ModelLibrary
from sdrest.models.types import ModelFolders
from sdrest.worker.downloads import DownloadLane

REQUEST = {"source": "hf:owner/repo/model.safetensors", "type": "lora"}


def _lane(tmp_path: Path) -> tuple[SqliteJobStore, DownloadLane]:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    library = ModelLibrary(ModelFolders.build(tmp_path / "models"), None)
    return store, DownloadLane(store, EventBus(store), library, HubConfig(), host="here")


def test_cancelling_a_row_a_stop_left_queued_removes_its_partial_file_only(tmp_path: Path) -> None:
    store, lane = _lane(tmp_path)
    with store:
        download, _ = store.create_download(REQUEST, join_key="k", hosts=["here"])
        store.claim_download("here")
        files = [
            DownloadFile(source=REQUEST["source"], name="model.safetensors", type="lora", bytes_done=3),
            DownloadFile(source="hf:owner/repo/done.safetensors", name="done.safetensors", type="lora", path="x"),
            DownloadFile(source="hf:owner/repo/new.safetensors", name="new.safetensors"),  # type not known yet
        ]
        store.download_progress(download.id, "here", files=files, bytes_done=3, bytes_total=None, bytes_per_second=0)
        store.recover_downloads("here")  # the server stopped under it: queued, to resume
        lora = tmp_path / "models" / "lora"
        lora.mkdir(parents=True)
        partial = lora / ".model.safetensors.partial"
        partial.write_bytes(b"abc")
        kept = lora / ".done.safetensors.partial"  # a file that landed has no partial of its own to remove
        kept.write_bytes(b"other")
        staged = tmp_path / "models" / "..new.safetensors.download.partial"
        staged.write_bytes(b"xyz")

        before = store.cancel_download(download.id)
        assert before is not None and before.status is DownloadStatus.QUEUED
        lane.cancelled(before)
        assert not partial.exists() and not staged.exists()
        assert kept.exists()
        assert store.get_download(download.id).status is DownloadStatus.CANCELLED  # type: ignore[union-attr]
