"""Finished jobs older than the retention go, with their files; young and live jobs stay."""

from __future__ import annotations

import time

from sdrest.app import close_app, create_app
from sdrest.retention import Janitor
from sdrest.settings import Settings


def test_sweep_deletes_old_finished_jobs_and_their_files(tmp_path) -> None:
    clock = [time.time() - 3 * 3600]
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", job_retention_hours=1), start_worker=False
    )
    svc = app.extensions["sdrest"]
    try:
        store = svc.store
        store._clock = lambda: clock[0]
        inputs = svc.settings.data_dir / "inputs" / "abc"
        inputs.mkdir(parents=True)
        old = store.create("txt2img", {"prompt": "old", "_inputs": "inputs/abc"})
        store.claim_next()
        store.complete(old.id, {"images": []}, {})
        (svc.settings.outputs_dir / old.id).mkdir(parents=True)
        (svc.settings.outputs_dir / old.id / "0.png").write_bytes(b"png")
        clock[0] = time.time()
        young = store.create("txt2img", {"prompt": "young"})
        store.claim_next()
        store.complete(young.id, {"images": []}, {})
        waiting = store.create("txt2img", {"prompt": "queued"})

        assert Janitor(svc).sweep() == 1
        assert store.get(old.id) is None
        assert not (svc.settings.outputs_dir / old.id).exists() and not inputs.exists()
        assert store.get(young.id) is not None and store.get(waiting.id) is not None
    finally:
        close_app(app)


def test_zero_retention_keeps_everything(tmp_path) -> None:
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", job_retention_hours=0), start_worker=False
    )
    try:
        svc = app.extensions["sdrest"]
        job = svc.store.create("txt2img", {"prompt": "x"})
        svc.store.cancel(job.id)
        assert Janitor(svc).sweep() == 0 and svc.store.get(job.id) is not None
    finally:
        close_app(app)


def test_sweep_purges_old_audit_rows_and_expired_revocations(tmp_path) -> None:
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", auth="jwt"), start_worker=False
    )
    try:
        auth = app.extensions["sdrest.auth"].store
        now = time.time()
        auth._clock = lambda: now - 100 * 86400
        auth.record_attempt("jwt", "old", "10.0.0.1", "failure", "x")
        auth._clock = time.time
        auth.record_attempt("jwt", "new", "10.0.0.1", "failure", "x")
        auth.revoke_token("expired-jti", now - 1)
        auth.revoke_token("live-jti", now + 3600)
        Janitor(app.extensions["sdrest"], auth_store=auth).sweep()
        assert [row["username"] for row in auth.attempts()] == ["new"]
        assert not auth.is_token_revoked("expired-jti") and auth.is_token_revoked("live-jti")
    finally:
        close_app(app)
