"""Model downloads through the API (issue 20): the real server on loopback, its download lane and
the hub stand-in (tests/hubs.py): a download lands and is listed, progress while it runs, cancel,
joining, kill -9 and resume with a Range request, bad input, the hub's errors."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hubs import Faults, Hubs

from server_helpers import Server, WorkerNode, add_users, bearer_headers, sse_events

USERS = {"root": ("root-password-1", "admin"), "alice": ("alice-password-1", "user")}
DOWNLOADS = "/api/v1/models/downloads"


def safetensors_bytes(floats: int, seed: int = 0) -> bytes:
    """A valid safetensors file of one F32 tensor (``floats`` values): a few KB of model."""
    header = json.dumps({"weight": {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}}).encode()
    header += b" " * (-(8 + len(header)) % 8)
    data = bytes((seed + i) % 251 for i in range(4 * floats))
    return struct.pack("<Q", len(header)) + header + data


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Hubs]:
    with Hubs() as hubs:
        yield hubs


def start_server(root: Path, hubs: Hubs) -> Server:
    (root / "models").mkdir(parents=True, exist_ok=True)
    server = Server(root, root / "models", "--auth", "jwt", *hubs.args())
    add_users(server, USERS)
    return server.start()


@pytest.fixture(scope="module")
def server(stand_in: Hubs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("downloads"), stand_in)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def headers(server: Server) -> dict[str, dict[str, str]]:
    return bearer_headers(server, USERS)


def wait_download(
    server: Server, headers: dict[str, str], download_id: str, until: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = server.get(f"{DOWNLOADS}/{download_id}", headers=headers).json()
        if view["status"] in until:
            return view
        assert time.monotonic() < deadline, f"download still {view['status']}: {view}"
        time.sleep(0.05)


def wait_bytes(server: Server, headers: dict[str, str], download_id: str, done: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        view = server.get(f"{DOWNLOADS}/{download_id}", headers=headers).json()
        if view["bytes_done"] >= done:
            return view
        assert time.monotonic() < deadline and view["status"] in ("queued", "downloading"), view
        time.sleep(0.05)


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


def test_a_download_lands_in_its_folder_and_is_listed_at_once(
    server: Server, headers: dict[str, dict[str, str]], stand_in: Hubs
) -> None:
    data = safetensors_bytes(1024, seed=1)
    stand_in.add_hf_file("owner/tiny", "tiny.safetensors", data)
    with requests.get(server.url("/api/v1/events"), headers=headers["root"], stream=True, timeout=60) as stream:
        response = server.post(
            DOWNLOADS, json={"source": "hf:owner/tiny/tiny.safetensors", "type": "checkpoint"}, headers=headers["root"]
        )
        assert response.status_code == 202, response.text
        created = response.json()
        assert response.headers["Location"] == f"{DOWNLOADS}/{created['id']}"
        assert created["source"] == "hf:owner/tiny/tiny.safetensors" and created["recipe"] is None
        seen = []
        for event in sse_events(stream):
            if event.get("event", "").startswith("download.") and event["data"]["id"] == created["id"]:
                seen.append(event)
                if event["event"] in ("download.completed", "download.failed", "download.cancelled"):
                    break
    assert seen[0]["event"] == "download.queued" and "id" in seen[0]
    finished = seen[-1]["data"]
    assert finished["status"] == "completed" and finished["error"] is None
    assert finished["bytes_done"] == finished["bytes_total"] == len(data)
    [item] = finished["files"]
    target = server.models_dir / "checkpoints" / "tiny.safetensors"
    assert item["path"] == str(target) and item["sha256"] == hashlib.sha256(data).hexdigest()
    assert target.read_bytes() == data
    assert hidden_files(server.models_dir) == []
    assert [h["host"] for h in finished["hosts"]] == [h["host"] for h in created["hosts"]] and len(
        created["hosts"]
    ) == 1

    listed = server.get("/api/v1/models?type=checkpoint", headers=headers["root"]).json()
    assert "tiny" in [model["name"] for model in listed["models"]]
    page = server.get(DOWNLOADS, headers=headers["root"]).json()
    assert page["downloads"][0]["id"] == created["id"] and page["total"] >= 1


def test_progress_while_running_a_second_request_joins_and_delete_cancels(
    server: Server, headers: dict[str, dict[str, str]], stand_in: Hubs
) -> None:
    data = safetensors_bytes(8192, seed=2)
    faults = Faults(hold_after=4096)
    stand_in.add_hf_file("owner/slow", "slow.safetensors", data, faults=faults)
    body = {"source": "hf:owner/slow/slow.safetensors", "type": "lora"}
    try:
        with requests.get(server.url("/api/v1/events"), headers=headers["root"], stream=True, timeout=60) as stream:
            first = server.post(DOWNLOADS, json=body, headers=headers["root"]).json()
            for event in sse_events(stream):
                view = event.get("data")
                if not (isinstance(view, dict) and view.get("id") == first["id"]):
                    continue
                assert event["event"] in ("download.queued", "download.progress"), event
                if event["event"] == "download.progress" and view["bytes_done"] > 0:
                    assert view["bytes_done"] <= 4096 and view["status"] == "downloading"
                    assert "id" not in event, "progress is live only"
                    break
        # The hub holds after 4096 bytes: all of them are reported, though no byte follows them
        # (the transfer sends a report its interval held back once the interval ends).
        running = wait_bytes(server, headers["root"], first["id"], 4096)
        assert running["status"] == "downloading"
        assert running["bytes_done"] == 4096 and running["bytes_total"] == len(data)
        assert running["hosts"][0]["bytes_done"] == running["bytes_done"]
        total_before = server.get(DOWNLOADS, headers=headers["root"]).json()["total"]

        joined = server.post(DOWNLOADS, json=body, headers=headers["root"])
        assert joined.status_code == 202 and joined.json()["id"] == first["id"]
        assert server.get(DOWNLOADS, headers=headers["root"]).json()["total"] == total_before

        folder = server.models_dir / "lora"
        assert hidden_files(folder), "the partial file is there while it runs"
        cancelled = server.delete(f"{DOWNLOADS}/{first['id']}", headers=headers["root"])
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    finally:
        faults.release.set()
    deadline = time.monotonic() + 30
    while hidden_files(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hidden_files(folder) == [] and not (folder / "slow.safetensors").exists()
    assert server.get(f"{DOWNLOADS}/{first['id']}", headers=headers["root"]).json()["status"] == "cancelled"


def test_a_recipe_download_fetches_its_files_then_writes_its_preset(
    server: Server, headers: dict[str, dict[str, str]], stand_in: Hubs
) -> None:
    data = safetensors_bytes(256, seed=5)
    stand_in.add_hf_file("stabilityai/sd-turbo", "sd_turbo.safetensors", data)  # the recipe's one file
    created = server.post(DOWNLOADS, json={"recipe": "sd-turbo"}, headers=headers["root"])
    assert created.status_code == 202, created.text
    assert (created.json()["recipe"], created.json()["source"]) == ("sd-turbo", None)
    done = wait_download(server, headers["root"], created.json()["id"], ("completed", "failed", "cancelled"))
    assert done["status"] == "completed", done
    assert [(f["name"], f["type"]) for f in done["files"]] == [("sd_turbo.safetensors", "checkpoint")]
    assert (server.models_dir / "checkpoints" / "sd_turbo.safetensors").read_bytes() == data
    preset = json.loads((server.models_dir / "presets" / "sd-turbo.json").read_text())
    assert "sd_turbo" in json.dumps(preset)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 422, "missing_field", "source"),
        ({"type": "lora"}, 422, "missing_field", "source"),
        ({"source": "hf:just-a-name"}, 422, "invalid_field", "source"),
        ({"source": "ftp://example.com/model.safetensors"}, 422, "invalid_field", "source"),
        ({"source": "hf:owner/repo/m.safetensors", "type": "sofa"}, 422, "invalid_field", "type"),
        ({"source": "hf:owner/repo/m.safetensors", "sha256": "abc"}, 422, "invalid_field", "sha256"),
        ({"source": "hf:owner/repo/m.safetensors", "sha256": "g" * 64}, 422, "invalid_field", "sha256"),
        ({"source": "hf:owner/repo/m.safetensors", "recipe": "sd-turbo"}, 422, "invalid_field", "recipe"),
        ({"recipe": "sd-turbo", "type": "lora"}, 422, "invalid_field", "type"),
        ({"recipe": "no-such-recipe"}, 404, "unknown_recipe", "recipe"),
        ({"source": "hf:owner/repo/m.safetensors", "hosts": ["elsewhere"]}, 422, "invalid_field", "hosts[0]"),
        ({"source": "hf:owner/repo/m.safetensors", "colour": 1}, 400, "unknown_field", "colour"),
    ],
)
def test_bad_input_names_the_field_and_queues_nothing(
    server: Server, headers: dict[str, dict[str, str]], body: dict[str, Any], status: int, code: str, field: str
) -> None:
    before = server.get(DOWNLOADS, headers=headers["root"]).json()["total"]
    response = server.post(DOWNLOADS, json=body, headers=headers["root"])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"].startswith(field)
    assert server.get(DOWNLOADS, headers=headers["root"]).json()["total"] == before


@pytest.mark.parametrize(
    ("query", "field"), [({"offset": 64535506057667019071386653032448}, "offset"), ({"limit": 0}, "limit")]
)
def test_a_bad_page_of_the_listing_names_the_field(
    server: Server, headers: dict[str, dict[str, str]], query: dict[str, int], field: str
) -> None:
    # The fuzzer's offset overflowed the database's integer: a 500 before it was bounded.
    response = server.get(DOWNLOADS, params=query, headers=headers["root"])
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["field"] == field


def test_only_admins_download(server: Server, headers: dict[str, dict[str, str]]) -> None:
    body = {"source": "hf:owner/repo/m.safetensors"}
    assert server.post(DOWNLOADS, json=body, headers=headers["alice"]).status_code == 403
    assert server.get(DOWNLOADS, headers=headers["alice"]).status_code == 403
    assert server.post(DOWNLOADS, json=body).status_code == 401
    assert server.get(f"{DOWNLOADS}/nope", headers=headers["root"]).status_code == 404
    assert server.delete(f"{DOWNLOADS}/nope", headers=headers["root"]).status_code == 404


def test_hub_errors_fail_the_download_with_the_hubs_code_leaving_nothing(
    server: Server, headers: dict[str, dict[str, str]], stand_in: Hubs
) -> None:
    stand_in.add_hf_file("owner/hashed", "hashed.safetensors", safetensors_bytes(512, seed=3))
    cases = [
        ({"source": "hf:owner/missing/none.safetensors", "type": "vae"}, "not_found", "owner/missing"),
        (
            {"source": "hf:owner/hashed/hashed.safetensors", "type": "vae", "sha256": "0" * 64},
            "hash_mismatch",
            "0" * 64,
        ),
    ]
    for body, code, named in cases:
        created = server.post(DOWNLOADS, json=body, headers=headers["root"]).json()
        failed = wait_download(server, headers["root"], created["id"], ("completed", "failed", "cancelled"))
        assert failed["status"] == "failed", failed
        assert failed["error"]["code"] == code and named in failed["error"]["message"]
        assert failed["hosts"][0]["error"] == failed["error"]
    assert not (server.models_dir / "vae").exists() or list((server.models_dir / "vae").rglob("*")) == []


def test_kill_9_mid_download_resumes_with_a_range_request(tmp_path: Path, stand_in: Hubs) -> None:
    data = safetensors_bytes(16384, seed=4)
    faults = Faults(hold_after=40000)  # more than a write buffer: some bytes are on disk when it holds
    stand_in.add_hf_file("owner/resume", "resume.safetensors", data, faults=faults)
    server = start_server(tmp_path, stand_in)
    try:
        auth = bearer_headers(server, {"root": USERS["root"]})["root"]
        created = server.post(
            DOWNLOADS, json={"source": "hf:owner/resume/resume.safetensors", "type": "checkpoint"}, headers=auth
        ).json()
        partial = server.models_dir / "checkpoints" / ".resume.safetensors.partial"
        wait_bytes(server, auth, created["id"], 1)
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline, "nothing reached the partial file"
            time.sleep(0.05)
        server.kill9()
        kept = partial.stat().st_size
        assert 0 < kept <= 40000
        faults.release.set()
        seen_before = len(stand_in.requests_to("cdn", "GET"))

        server.restart()
        auth = bearer_headers(server, {"root": USERS["root"]})["root"]
        done = wait_download(server, auth, created["id"], ("completed", "failed", "cancelled"))
        assert done["status"] == "completed", done
        resumed = stand_in.requests_to("cdn", "GET")[seen_before:]
        assert [r.range for r in resumed if r.path.endswith("resume.safetensors")] == [f"bytes={kept}-"]
        target = server.models_dir / "checkpoints" / "resume.safetensors"
        assert target.read_bytes() == data and hidden_files(server.models_dir) == []
    finally:
        faults.release.set()
        server.stop()


def test_a_cluster_download_runs_on_each_worker_host_into_its_own_folder(
    tmp_path: Path, stand_in: Hubs, postgres_url: str
) -> None:
    store = ["--store", postgres_url]
    (tmp_path / "api-models").mkdir()
    api = Server(tmp_path / "api", tmp_path / "api-models", "--no-worker", *store, *stand_in.args())
    folders = {name: tmp_path / f"models-{name}" for name in ("w0", "w1")}
    nodes = [
        WorkerNode(tmp_path, folders[name], name, "--data-dir", str(tmp_path / name), *store, *stand_in.args())
        for name in folders
    ]
    everywhere, one_host = safetensors_bytes(512, seed=6), safetensors_bytes(512, seed=7)
    stand_in.add_hf_file("owner/cluster", "everywhere.safetensors", everywhere)
    stand_in.add_hf_file("owner/cluster", "one.safetensors", one_host)
    try:
        api.root.mkdir()
        api.start(wait_for_worker=False)
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_live(api)
        body = {"source": "hf:owner/cluster/everywhere.safetensors", "type": "lora"}
        created = api.post(DOWNLOADS, json=body).json()
        assert sorted(h["host"] for h in created["hosts"]) == ["w0", "w1"]
        done = wait_download(api, {}, created["id"], ("completed", "failed", "cancelled"))
        assert done["status"] == "completed", done
        assert [(h["status"], h["bytes_done"]) for h in done["hosts"]] == [("completed", len(everywhere))] * 2
        assert all(
            (folder / "lora" / "everywhere.safetensors").read_bytes() == everywhere for folder in folders.values()
        )

        only = api.post(DOWNLOADS, json={"source": "hf:owner/cluster/one.safetensors", "type": "lora", "hosts": ["w1"]})
        assert [h["host"] for h in only.json()["hosts"]] == ["w1"]
        assert wait_download(api, {}, only.json()["id"], ("completed", "failed", "cancelled"))["status"] == "completed"
        assert (folders["w1"] / "lora" / "one.safetensors").read_bytes() == one_host
        assert not (folders["w0"] / "lora" / "one.safetensors").exists()
        refused = api.post(DOWNLOADS, json={**body, "hosts": ["w9"]})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "hosts[0]"
    finally:
        for node in nodes:
            node.stop()
        api.stop()
