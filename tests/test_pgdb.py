"""sdrest.pgdb with a real PostgreSQL: what an exhausted pool and a failing statement raise.

(An unreachable server, under real nodes: tests/test_store_outage.py.)"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from sdrest.jobs import JobStoreUnavailable
from sdrest.jobs.pgstore import PostgresJobStore
from sdrest.pgdb import PgDatabase


def _waiting_on_locks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_pool_whose_connections_stay_busy_is_unavailable_after_the_wait(postgres_url: str) -> None:
    store = PostgresJobStore(postgres_url, pool_size=2, wait_timeout=0.3)
    job = store.create("txt2img", {})
    admin = psycopg.connect(postgres_url)
    try:
        admin.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")  # held until the commit below
        with ThreadPoolExecutor(2) as threads:
            blocked = [threads.submit(store.get, job.id) for _ in range(2)]  # each holds a connection
            deadline = time.monotonic() + 60
            while _waiting_on_locks(postgres_url) < 2:
                assert time.monotonic() < deadline, "the two reads never waited on the lock"
                time.sleep(0.02)
            with pytest.raises(JobStoreUnavailable) as busy:
                store.last_event_id()  # another table: it waits for a connection, not for the lock
            assert str(busy.value) == (
                "the job store is unavailable: every pooled connection stayed busy: "
                "no connection within 0.3 s (a larger pool?)"
            )
            admin.commit()
            assert [future.result().id for future in blocked] == [job.id, job.id]
        assert store.last_event_id() == store.events_after(0)[-1].id  # it serves again
    finally:
        admin.close()
        store.close()


def test_a_failing_statement_is_not_an_outage(postgres_url: str) -> None:
    db = PgDatabase(postgres_url, what="the x store", error=RuntimeError, pool_name="sdrest-test", pool_size=1)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled), db.connection() as conn:
            conn.execute("SET statement_timeout = '10ms'")
            conn.execute("SELECT pg_sleep(5)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            db.query("SELECT * FROM no_such_table")
        assert db.query("SELECT 1") == [(1,)]
    finally:
        db.close()
