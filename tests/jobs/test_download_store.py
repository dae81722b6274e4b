"""Download rows in the job store, one suite for both backends (SQLite and a real PostgreSQL):
joining, claims per host, progress, outcomes, cancellation, recovery after a stop, events."""

from __future__ import annotations

import threading

import pytest

from postgres_helpers import Backend
from sdrest.jobs import JobStore
from sdrest.jobs.downloads import DownloadError, DownloadFile, DownloadStatus

REQUEST = {"source": "hf:owner/repo/model.safetensors@main", "type": "checkpoint"}
KEY = "hf:owner/repo/model.safetensors@main|checkpoint|"


def _file(done: int = 0, **extra: object) -> DownloadFile:
    return DownloadFile(source=REQUEST["source"], name="model.safetensors", size=10, bytes_done=done, **extra)  # type: ignore[arg-type]


def test_create_get_and_list(store: JobStore) -> None:
    download, created = store.create_download(REQUEST, join_key=KEY, hosts=["local"], owner="admin")
    assert created
    assert download.status is DownloadStatus.QUEUED
    assert download.request == REQUEST and download.owner == "admin"
    assert [(row.host, row.status) for row in download.hosts] == [("local", DownloadStatus.QUEUED)]
    assert store.get_download(download.id) == download
    assert store.get_download("nope") is None

    other, _ = store.create_download({"recipe": "sd-turbo"}, join_key="recipe:sd-turbo", hosts=["local"])
    page, total = store.list_downloads()
    assert total == 2 and [item.id for item in page] == [other.id, download.id]
    page, total = store.list_downloads(limit=1, offset=1)
    assert total == 2 and [item.id for item in page] == [download.id]


def test_a_second_request_joins_the_running_download_until_it_ends(store: JobStore) -> None:
    first, _ = store.create_download(REQUEST, join_key=KEY, hosts=["local"])
    again, created = store.create_download(REQUEST, join_key=KEY, hosts=["local"])
    assert not created and again.id == first.id
    assert store.list_downloads()[1] == 1

    claimed = store.claim_download("local")
    assert claimed is not None
    store.finish_download(first.id, "local", DownloadStatus.COMPLETED, files=[_file(10)])
    later, created = store.create_download(REQUEST, join_key=KEY, hosts=["local"])
    assert created and later.id != first.id


def test_concurrent_requests_for_one_file_make_one_download(store: JobStore) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["local"])
        with lock:
            ids.append(download.id)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and store.list_downloads()[1] == 1


def test_each_host_claims_only_its_own_row_once(store: JobStore) -> None:
    download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["a", "b"])
    claimed = store.claim_download("a")
    assert claimed is not None and claimed.id == download.id
    assert claimed.host("a").status is DownloadStatus.DOWNLOADING  # type: ignore[union-attr]
    assert claimed.host("a").attempts == 1  # type: ignore[union-attr]
    assert claimed.host("b").status is DownloadStatus.QUEUED  # type: ignore[union-attr]
    assert claimed.status is DownloadStatus.DOWNLOADING
    assert store.claim_download("a") is None
    assert store.claim_download("c") is None
    other = store.claim_download("b")
    assert other is not None and other.id == download.id


def test_progress_and_outcomes_per_host(store: JobStore) -> None:
    download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["a", "b"])
    store.claim_download("a")
    assert store.download_progress(
        download.id, "a", files=[_file(4)], bytes_done=4, bytes_total=10, bytes_per_second=2.5
    )
    assert not store.download_progress(
        download.id, "b", files=[_file(4)], bytes_done=4, bytes_total=10, bytes_per_second=2.5
    ), "b's row is not running"
    view = store.get_download(download.id).to_dict()  # type: ignore[union-attr]
    assert (view["status"], view["bytes_done"], view["bytes_total"], view["bytes_per_second"]) == (
        "downloading",
        4,
        None,  # b's total is not known yet
        2.5,
    )
    assert view["files"][0]["bytes_done"] == 4

    done = store.finish_download(
        download.id, "a", DownloadStatus.COMPLETED, files=[_file(10, path="/m/model.safetensors")]
    )
    assert done is not None and done.status is DownloadStatus.QUEUED  # b still waits
    store.claim_download("b")
    failed = store.finish_download(
        download.id, "b", DownloadStatus.FAILED, files=[_file(3)], error=DownloadError("not_found", "gone")
    )
    assert failed is not None
    view = failed.to_dict()
    assert view["status"] == "failed"
    assert view["error"] == {"code": "not_found", "message": "gone"}
    assert [(row["host"], row["status"], row["bytes_done"]) for row in view["hosts"]] == [
        ("a", "completed", 10),
        ("b", "failed", 3),
    ]
    assert view["files"][0]["path"] == "/m/model.safetensors"
    assert view["finished_at"] is not None
    assert (
        store.finish_download(download.id, "a", DownloadStatus.FAILED, files=[], error=DownloadError("x", "y")) is None
    )


def test_cancel_stops_progress_and_the_outcome(store: JobStore) -> None:
    download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["local"])
    store.claim_download("local")
    before = store.cancel_download(download.id)
    assert before is not None and before.status is DownloadStatus.DOWNLOADING
    assert store.get_download(download.id).status is DownloadStatus.CANCELLED  # type: ignore[union-attr]
    assert not store.download_progress(
        download.id, "local", files=[], bytes_done=1, bytes_total=2, bytes_per_second=1.0
    )
    assert store.finish_download(download.id, "local", DownloadStatus.COMPLETED, files=[]) is None
    assert store.cancel_download("nope") is None


def test_recover_queues_the_rows_a_stop_cut_off_keeping_their_progress(backend: Backend) -> None:
    with backend.open() as store:
        download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["a", "b"])
        store.claim_download("a")
        store.claim_download("b")
        store.download_progress(download.id, "a", files=[_file(4)], bytes_done=4, bytes_total=10, bytes_per_second=1)
    with backend.open() as store:  # the server that held it is gone
        recovered = store.recover_downloads("a")
        assert [item.id for item in recovered] == [download.id]
        row = store.get_download(download.id).host("a")  # type: ignore[union-attr]
        assert row is not None and row.status is DownloadStatus.QUEUED and row.bytes_done == 4
        assert store.get_download(download.id).host("b").status is DownloadStatus.DOWNLOADING  # type: ignore[union-attr]
        again = store.claim_download("a")
        assert again is not None and again.host("a").attempts == 2  # type: ignore[union-attr]


def test_lifecycle_events_carry_the_view_and_the_owner(store: JobStore) -> None:
    start = store.last_event_id()
    download, _ = store.create_download(REQUEST, join_key=KEY, hosts=["local"], owner="admin")
    store.create_download(REQUEST, join_key=KEY, hosts=["local"], owner="admin")  # joined: no event
    store.claim_download("local")
    store.download_progress(download.id, "local", files=[_file(4)], bytes_done=4, bytes_total=10, bytes_per_second=1)
    store.finish_download(download.id, "local", DownloadStatus.COMPLETED, files=[_file(10)])
    events = store.events_after(start)
    assert [event.type for event in events] == ["download.queued", "download.completed"]
    assert all(event.owner == "admin" and event.job_id is None for event in events)
    assert events[1].data == store.get_download(download.id).to_dict()  # type: ignore[union-attr]
    assert store.events_after(start, owners={"bob"}) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.create_download(REQUEST, join_key=KEY, hosts=[]),
        lambda s: s.create_download(REQUEST, join_key=KEY, hosts=["a", "a"]),
        lambda s: s.finish_download("x", "a", DownloadStatus.QUEUED, files=[]),
        lambda s: s.finish_download("x", "a", DownloadStatus.FAILED, files=[]),
        lambda s: s.download_progress("x", "a", files=[], bytes_done=-1, bytes_total=None, bytes_per_second=0),
        lambda s: s.list_downloads(limit=-1),
    ],
)
def test_bad_arguments_are_refused(store: JobStore, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        call(store)
