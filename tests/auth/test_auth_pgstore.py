"""What only the PostgreSQL auth store has: its schema ledger beside the job store's, nodes
migrating at once, a newer schema refused, the shared token secret, and passwords kept out of
messages (the shared semantics run on both backends in test_auth_store.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from sdrest.auth.store import AuthStore, AuthStoreError, location
from sdrest.auth.web import jwt_secret
from sdrest.jobs.pgstore import PostgresJobStore
from sdrest.settings import Settings
from server_helpers import free_port


def test_auth_tables_live_beside_the_jobs_with_their_own_ledger(postgres_url: str) -> None:
    with PostgresJobStore(postgres_url) as jobs, AuthStore(postgres_url) as auth:
        job = jobs.create("txt2img", {}, owner="alice")
        auth.add_user("alice", "pw")
        assert jobs.get(job.id).owner == auth.get_user("alice").name
    with psycopg.connect(postgres_url) as raw:
        assert raw.execute("SELECT version FROM auth_schema_version").fetchall() == [(1,)]
        assert raw.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1
    with AuthStore(postgres_url) as again:  # no second migration, nothing lost
        assert again.check_password("alice", "pw") is not None
    with psycopg.connect(postgres_url) as raw:
        assert raw.execute("SELECT COUNT(*) FROM auth_schema_version").fetchone()[0] == 1


def test_nodes_starting_at_once_migrate_once(postgres_url: str) -> None:
    start = threading.Barrier(4)

    def node() -> AuthStore:
        start.wait()
        return AuthStore(postgres_url)

    with ThreadPoolExecutor(4) as pool:
        opened = [pool.submit(node) for _ in range(4)]
    stores = [future.result() for future in opened if future.exception() is None]
    try:
        assert len(stores) == 4, [future.exception() for future in opened]
        stores[0].add_user("alice", "pw")
        assert stores[3].get_user("alice") is not None
    finally:
        for store in stores:
            store.close()
    with psycopg.connect(postgres_url) as raw:
        assert raw.execute("SELECT version FROM auth_schema_version").fetchall() == [(1,)]


def test_a_newer_schema_is_refused_and_left_alone(postgres_url: str) -> None:
    with AuthStore(postgres_url) as store:
        store.add_user("alice", "pw")
    with psycopg.connect(postgres_url) as raw:
        raw.execute("INSERT INTO auth_schema_version VALUES (99, 0)")
    with pytest.raises(AuthStoreError, match="auth schema version 99; this sdrest knows 1"):
        AuthStore(postgres_url)
    with psycopg.connect(postgres_url) as raw:
        assert raw.execute("SELECT name FROM users").fetchall() == [("alice",)]


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql://sdrest:s3cret-pw@127.0.0.1:{free_port()}/auth"  # nothing listens there
    with pytest.raises(AuthStoreError) as raised:
        AuthStore(url, connect_timeout=1.0)
    message = str(raised.value)
    assert "cannot connect to the auth store at postgresql://sdrest:***@127.0.0.1" in message
    assert "s3cret-pw" not in message


def test_the_store_follows_the_store_setting(tmp_path: Path, postgres_url: str) -> None:
    assert location(Settings(data_dir=tmp_path)) == tmp_path / "auth.sqlite3"
    assert location(Settings(data_dir=tmp_path, store=f"sqlite:///{tmp_path}/jobs.db")) == tmp_path / "auth.sqlite3"
    assert location(Settings(data_dir=tmp_path, store=postgres_url)) == postgres_url


def test_nodes_sharing_the_database_sign_with_one_secret(tmp_path: Path, postgres_url: str) -> None:
    node_a = Settings(data_dir=tmp_path / "a", store=postgres_url)
    node_b = Settings(data_dir=tmp_path / "b", store=postgres_url)
    with AuthStore(postgres_url) as a, AuthStore(postgres_url) as b:
        secret = jwt_secret(node_a, a)
        assert len(secret) >= 32
        assert jwt_secret(node_b, b) == secret
        # An explicit secret still wins (and is not stored).
        explicit = "e" * 40
        assert jwt_secret(Settings(data_dir=tmp_path / "c", store=postgres_url, jwt_secret=explicit), a) == explicit
        assert jwt_secret(node_b, b) == secret
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # no secret file anywhere
