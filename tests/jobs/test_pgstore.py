"""What only the PostgreSQL backend has: connecting, its schema ledger, nodes migrating at once,
and passwords kept out of messages (the shared semantics are in test_store_conformance.py)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from postgres_helpers import PostgresCluster
from sdrest.jobs import JobStatus, JobStoreError, SchemaVersionError, open_store
from sdrest.jobs.pgstore import SCHEMA_VERSION, PostgresJobStore
from sdrest.jobs.store import redact_url
from server_helpers import free_port


def test_open_store_by_url_and_schema(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresJobStore)
        assert store.schema_version() == SCHEMA_VERSION
        job = store.create("txt2img", {"prompt": "by url"})
    finally:
        store.close()
    with PostgresJobStore(postgres_url) as again:  # no second migration
        assert again.schema_version() == SCHEMA_VERSION
        assert again.get(job.id).params == {"prompt": "by url"}
    with psycopg.connect(postgres_url) as raw:
        assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_nodes_starting_at_once_migrate_once(postgres_url: str) -> None:
    stores: list[PostgresJobStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def node() -> None:
        start.wait()
        try:
            stores.append(PostgresJobStore(postgres_url, pool_size=2))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == [] and len(stores) == 4
        job = stores[0].create("txt2img", {})
        assert stores[3].get(job.id) is not None
    finally:
        for store in stores:
            store.close()


def test_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresJobStore(postgres_url).close()
    with psycopg.connect(postgres_url) as raw:
        raw.execute("INSERT INTO schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError, match="was it written by a newer version"):
        PostgresJobStore(postgres_url)


def test_an_unreachable_server_is_a_clear_error_without_the_password(postgres: PostgresCluster) -> None:
    url = f"postgresql://sdrest:s3cret-pw@127.0.0.1:{free_port()}/jobs"  # nothing listens there
    with pytest.raises(JobStoreError) as raised:
        PostgresJobStore(url, connect_timeout=1.0)
    assert "127.0.0.1" in str(raised.value) and "s3cret-pw" not in str(raised.value)
    assert redact_url(url) == url.replace("s3cret-pw", "***")
    assert redact_url(postgres.url("jobs")) == postgres.url("jobs")
    assert redact_url("postgresql://db.example/jobs?sslmode=require&password=pw%26x") == (
        "postgresql://db.example/jobs?sslmode=require&password=***"
    )


def test_unknown_store_schemes_are_refused() -> None:
    with pytest.raises(JobStoreError, match="sqlite:/// or postgresql://"):
        open_store("mysql://localhost/jobs")


def test_connections_the_server_dropped_are_replaced(postgres_url: str) -> None:
    """A database restart or an idle timeout cuts the pool's connections: the next calls get
    fresh ones instead of failing."""
    with PostgresJobStore(postgres_url, pool_size=2) as store:
        job = store.create("txt2img", {})
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        assert dropped >= 1
        assert store.get(job.id).status is JobStatus.QUEUED
        assert store.claim_next().id == job.id
