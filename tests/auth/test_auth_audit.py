"""The audit trail (sdrest.auth.audit): a store row plus one structured log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sdrest.auth.audit import log_attempt
from sdrest.auth.store import AuthStore

PASSWORD = "hunter2-Sup3r-Secret"


@pytest.fixture
def store(tmp_path: Path):
    with AuthStore(tmp_path / "auth.sqlite3") as s:
        yield s


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    records = [r for r in caplog.records if r.name == "sdrest.audit"]
    lines = [r.getMessage() for r in records]
    assert all(line.startswith("auth {") and "\n" not in line for line in lines)
    return [json.loads(line[len("auth ") :]) for line in lines]


def test_a_login_is_logged_and_recorded_without_the_password(
    store: AuthStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sdrest.audit")
    store.add_user("alice", PASSWORD)
    user = store.check_password("alice", PASSWORD + "x")
    log_attempt(
        store,
        method="password",
        username="alice",
        client_ip="192.0.2.7",
        outcome="success" if user else "failure",
        reason=None if user else "bad password",
    )
    user = store.check_password("alice", PASSWORD)
    log_attempt(
        store,
        method="password",
        username="alice",
        client_ip="192.0.2.7",
        outcome="success" if user else "failure",
        reason=None if user else "bad password",
    )

    entries = _audit_lines(caplog)
    assert [(e["method"], e["user"], e["ip"], e["outcome"]) for e in entries] == [
        ("password", "alice", "192.0.2.7", "failure"),
        ("password", "alice", "192.0.2.7", "success"),
    ]
    assert entries[0]["reason"] == "bad password" and entries[0]["time"].endswith("Z")
    levels = [r.levelno for r in caplog.records if r.name == "sdrest.audit"]
    assert levels == [logging.WARNING, logging.INFO]
    assert PASSWORD not in caplog.text
    rows = store.attempts()
    assert [(r["method"], r["username"], r["client_ip"], r["outcome"]) for r in rows] == [
        ("password", "alice", "192.0.2.7", "success"),
        ("password", "alice", "192.0.2.7", "failure"),
    ]
    assert PASSWORD not in repr(rows)


def test_hostile_usernames_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sdrest.audit")
    evil = 'eve"\nauth {"outcome": "success"} outcome=success'
    log_attempt(
        None, method="password", username=evil, client_ip="198.51.100.1", outcome="failure", reason="unknown user"
    )
    (entry,) = _audit_lines(caplog)
    assert entry["user"] == evil and entry["outcome"] == "failure"


def test_a_broken_store_does_not_break_the_login(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sdrest.audit")
    store = AuthStore(tmp_path / "auth.sqlite3")
    store.close()
    log_attempt(store, method="api-key", username=None, client_ip="::1", outcome="failure", reason="unknown key")
    assert _audit_lines(caplog)[0]["outcome"] == "failure"
    assert any(r.levelno == logging.ERROR and "could not record" in r.getMessage() for r in caplog.records)


def test_an_unknown_outcome_is_a_bug(store: AuthStore) -> None:
    with pytest.raises(ValueError):
        log_attempt(store, method="password", username="a", client_ip="::1", outcome="maybe", reason=None)
    assert store.attempts() == []
