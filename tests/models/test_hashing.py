"""Hashes (sha256, A1111 short and legacy) and the SQLite hash cache."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from sdrest.models import hashing
from sdrest.models.hashing import HashCache, legacy_model_hash, sha256_file, short_hash

HELLO_SHA256 = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def test_sha256_of_a_known_byte_string(tmp_path: Path) -> None:
    path = tmp_path / "hello.bin"
    path.write_bytes(b"hello world")
    assert sha256_file(path) == HELLO_SHA256
    assert short_hash(HELLO_SHA256) == "b94d27b993"


def test_sha256_across_chunk_boundaries(tmp_path: Path) -> None:
    data = os.urandom(3 * hashing.CHUNK_SIZE + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_legacy_hash_reads_64k_at_1m(tmp_path: Path) -> None:
    data = random.Random(0).randbytes(0x100000 + 0x10000 + 4096)
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    expected = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    assert legacy_model_hash(path) == expected
    # Exactly that window: one byte more or less, or the file's start, hash differently.
    assert expected != hashlib.sha256(data[:0x10000]).hexdigest()[:8]
    assert expected != hashlib.sha256(data[0x100000:0x110001]).hexdigest()[:8]
    assert expected != hashlib.sha256(data[0x100001:0x110000]).hexdigest()[:8]


def test_legacy_hash_of_a_small_file_is_the_empty_hash_like_a1111(tmp_path: Path) -> None:
    path = tmp_path / "small.pt"
    path.write_bytes(b"x" * 1000)
    assert legacy_model_hash(path) == "e3b0c442"


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every real hash computation the cache makes."""
    calls: list[Path] = []
    real = hashing.sha256_file

    def counted(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", counted)
    return calls


def test_cache_hit_avoids_rehashing(tmp_path: Path, counting: list[Path]) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"hello world")
    with HashCache() as cache:
        assert cache.get(path) is None
        assert cache.get_or_compute(path) == HELLO_SHA256
        assert cache.get_or_compute(path) == HELLO_SHA256
        assert cache.get(path) == HELLO_SHA256
    assert len(counting) == 1


def test_changed_mtime_or_size_invalidates(tmp_path: Path, counting: list[Path]) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"hello world")
    with HashCache() as cache:
        cache.get_or_compute(path)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert cache.get(path) is None
        assert cache.get_or_compute(path) == HELLO_SHA256
        assert len(counting) == 2

        path.write_bytes(b"hello world!")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same mtime, new size
        assert cache.get(path) is None
        assert cache.get_or_compute(path) == hashlib.sha256(b"hello world!").hexdigest()
        assert len(counting) == 3


def test_cache_persists_in_sqlite_and_keys_by_resolved_path(tmp_path: Path, counting: list[Path]) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"hello world")
    database = tmp_path / "state" / "hashes.sqlite"
    with HashCache(database) as cache:
        cache.get_or_compute(path)
    with HashCache(database) as cache:
        assert cache.get(tmp_path / "." / "m.safetensors") == HELLO_SHA256
        assert cache.get_or_compute(path) == HELLO_SHA256
    assert len(counting) == 1


def test_file_changing_while_hashed_is_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "growing.safetensors"
    path.write_bytes(b"partial")
    real = hashing.sha256_file

    def hash_while_appending(p: Path) -> str:
        digest = real(p)
        with open(p, "ab") as f:
            f.write(b" more")
        return digest

    monkeypatch.setattr(hashing, "sha256_file", hash_while_appending)
    with HashCache() as cache:
        cache.get_or_compute(path)
        assert cache.get(path) is None


def test_forget_missing(tmp_path: Path) -> None:
    keep, drop = tmp_path / "keep.bin", tmp_path / "drop.bin"
    keep.write_bytes(b"a")
    drop.write_bytes(b"b")
    with HashCache() as cache:
        cache.get_or_compute(keep)
        cache.get_or_compute(drop)
        drop.unlink()
        assert cache.forget_missing() == 1
        assert cache.get(keep) is not None


def test_cache_is_usable_from_many_threads(tmp_path: Path) -> None:
    files = []
    for i in range(4):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(bytes([i]) * 5000)
        files.append(path)
    expected = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    errors: list[BaseException] = []
    with HashCache(tmp_path / "h.sqlite") as cache:

        def work() -> None:
            try:
                for _ in range(20):
                    for p in files:
                        assert cache.get_or_compute(p) == expected[p]
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
