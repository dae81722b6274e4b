"""The data folder is private (0700 folders, 0600 files) and used by one server at a time."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from helpers import test_image
from sdrest.datadir import DataDirBusyError, DataDirLock
from server_helpers import Server, link_models, png_base64


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_lock_on_one_folder_is_refused_until_the_first_is_released(tmp_path) -> None:
    first = DataDirLock(tmp_path)
    with pytest.raises(DataDirBusyError, match="another sdrest server"):
        DataDirLock(tmp_path)
    first.release()
    DataDirLock(tmp_path).release()


@pytest.mark.slow
def test_everything_the_server_writes_is_private_and_a_second_server_is_refused(models, tmp_path) -> None:
    server = Server(tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1").start()
    try:
        job = server.post(
            "/api/v1/generate/img2img",
            json={
                "prompt": "a red apple",
                "width": 64,
                "height": 64,
                "steps": 1,
                "seed": 1,
                "wait": True,
                "init_image": png_base64(test_image()),
                "strength": 0.5,
            },
        ).json()
        assert job["status"] == "completed", job["error"]
        assert server.get(job["images"][0]["url"] + "?size=32").status_code == 200  # a thumbnail

        data = server.data_dir
        folders = [data, data / "outputs", data / "inputs", data / "outputs" / job["job_id"] / ".thumbnails"]
        files = [p for p in data.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"jobs.sqlite3", "0.png"}
        assert [p for p in folders if _mode(p) != 0o700] == []
        assert [(str(p), oct(_mode(p))) for p in files if _mode(p) & 0o077] == []

        second = subprocess.run(
            [*server.command(), "--port", "1"], env=server.env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 1
        assert "another sdrest server" in second.stderr and str(data) in second.stderr
        assert server.status()["status"] == "ok"  # the first one is untouched
        assert server.get(f"/api/v1/generate/{job['job_id']}").json()["status"] == "completed"
    finally:
        server.stop()
