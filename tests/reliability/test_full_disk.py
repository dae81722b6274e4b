"""Outputs on a small filesystem that fills up: the job fails with a clear ``disk_full`` error,
leaves no files behind, the server keeps serving, and jobs succeed again once space is freed."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest
from PIL import Image

from server_helpers import Server, link_models

pytestmark = pytest.mark.slow


@pytest.fixture()
def small_fs(tmp_path):
    """A 2 MiB tmpfs (CI runs as root; elsewhere the test cannot mount and says so)."""
    mount = tmp_path / "outputs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount) -> None:
    """Take every free byte of the filesystem (unbuffered writes, smaller and smaller)."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 16
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)


def test_a_full_output_disk_fails_the_job_cleanly_and_freeing_space_heals_it(models, tmp_path, small_fs) -> None:
    server = Server(
        tmp_path, link_models(models, tmp_path / "models"), "--model", "sd1", "--output-dir", str(small_fs)
    ).start()
    try:
        assert server.submit(seed=1, wait=True)["status"] == "completed"  # the disk works
        _fill(small_fs)
        failed = server.submit(seed=2, wait=True)
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "disk_full" and "space" in failed["error"]["message"]
        assert not (small_fs / failed["job_id"]).exists()  # nothing half-written left behind
        assert server.status()["status"] == "ok" and server.status()["worker"]["alive"]

        os.unlink(small_fs / "filler")
        healed = server.submit(seed=3, wait=True)
        assert healed["status"] == "completed", healed["error"]
        response = server.get(healed["images"][0]["url"])
        assert response.status_code == 200
        path = small_fs / healed["job_id"] / "0.png"
        with Image.open(path) as image:
            image.load()  # the whole file decodes
            assert image.size == (64, 64)
    finally:
        server.stop()
