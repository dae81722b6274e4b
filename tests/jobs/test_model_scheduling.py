"""Model-aware scheduling in JobStore.claim_next: within a priority, jobs for a loaded model
go first, and no job is overtaken more than the limit (both backends: tests/jobs/conftest.py)."""

from __future__ import annotations

from sdrest.jobs import JobStore

A, B = "/models/a.safetensors", "/models/b.safetensors"


def _queue(store: JobStore, *models: str | None, priority: int = 0, owner: str | None = None) -> list[str]:
    return [
        store.create("generate", {"model_path": model, "prompt": str(i)}, owner=owner, priority=priority).id
        for i, model in enumerate(models)
    ]


def _drain(store: JobStore, loaded: set[str] | None, limit: int) -> list[str]:
    """Claim everything; the loaded model becomes whatever the claimed job needed."""
    order = []
    while (job := store.claim_next(loaded=loaded, overtake_limit=limit)) is not None:
        order.append(job.id)
        if loaded is not None and job.params.get("model_path"):
            loaded = {job.params["model_path"]}
        store.complete(job.id, {}, {})
    return order


def test_without_loaded_models_the_order_is_strict(store: JobStore) -> None:
    ids = _queue(store, A, B, A, B)
    assert _drain(store, None, 4) == ids


def test_a_limit_of_zero_keeps_strict_order(store: JobStore) -> None:
    ids = _queue(store, A, B, A, B)
    assert _drain(store, {A}, 0) == ids


def test_jobs_for_the_loaded_model_go_first_up_to_the_limit(store: JobStore) -> None:
    a1, b1, a2, b2, a3, a4 = _queue(store, A, B, A, B, A, A)
    # A loaded: a1, then a2, a3, a4 overtake b1 (3 times; the limit is 4), then b1, b2.
    assert _drain(store, {A}, 4) == [a1, a2, a3, a4, b1, b2]


def test_a_job_is_overtaken_at_most_limit_times(store: JobStore) -> None:
    b1, a1, a2, a3, a4 = _queue(store, B, A, A, A, A)
    # b1 heads the queue but needs B; A is loaded: two A jobs may pass it, then it runs.
    assert _drain(store, {A}, 2) == [a1, a2, b1, a3, a4]


def test_jobs_without_a_model_count_as_loaded(store: JobStore) -> None:
    b1, upscale = _queue(store, B, None)
    assert _drain(store, {A}, 1) == [upscale, b1]


def test_a_higher_priority_is_never_overtaken(store: JobStore) -> None:
    (urgent,) = _queue(store, B, priority=5)
    (normal,) = _queue(store, A)
    assert _drain(store, {A}, 10) == [urgent, normal]


def test_users_still_take_turns_among_the_jobs_it_prefers(store: JobStore) -> None:
    alice = _queue(store, A, A, owner="alice")
    (bob,) = _queue(store, A, owner="bob")
    (carol,) = _queue(store, B, owner="carol")
    # Turns: alice, bob, carol, then alice's second. Carol's job needs B while A is loaded, so
    # alice's second job passes it once; the limit (2) is not reached.
    assert _drain(store, {A}, 2) == [alice[0], bob, alice[1], carol]
