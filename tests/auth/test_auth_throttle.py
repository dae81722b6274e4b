"""Brute-force throttling (sdrest.auth.throttle) with a fake clock."""

from __future__ import annotations

import threading

import pytest

from helpers import FakeClock
from sdrest.auth.throttle import USER_CEILING, Throttle


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def throttle(clock: FakeClock) -> Throttle:
    return Throttle(max_failures=5, window=300.0, lockout=300.0, clock=clock)


def test_a_username_is_locked_only_at_its_ceiling(throttle: Throttle, clock: FakeClock) -> None:
    # Five wrong passwords from one client lock that client, not the account for everyone.
    for _ in range(5):
        throttle.failure("admin", "198.51.100.7")
    assert throttle.check("admin", "198.51.100.7") is not None
    assert throttle.check("admin", "10.9.9.9") is None
    # A guess spread over many addresses still locks the account, at USER_CEILING times the limit.
    for i in range(5 * USER_CEILING - 5 - 1):
        throttle.failure("admin", f"10.0.{i // 4}.{i % 4}")  # one failure per address: none locks
        assert throttle.check("admin", "10.9.9.9") is None
    throttle.failure("admin", "10.1.0.0")
    wait = throttle.check("admin", "10.9.9.9")
    assert wait == pytest.approx(300.0)
    assert throttle.check("bob", "10.9.9.9") is None  # other users are unaffected
    clock.now += 120
    assert throttle.check("admin", "10.9.9.9") == pytest.approx(180.0)
    clock.now += 180
    assert throttle.check("admin", "10.9.9.9") is None


def test_this_machine_can_always_log_in_while_the_account_is_at_its_ceiling(throttle: Throttle) -> None:
    for i in range(5 * USER_CEILING):
        throttle.failure("admin", f"10.0.{i // 4}.{i % 4}")
    assert throttle.check("admin", "10.9.9.9") is not None
    for loopback in ("127.0.0.1", "::1"):
        assert throttle.check("admin", loopback) is None
        assert throttle.begin("admin", loopback) is None  # a login from the server itself is checked
        throttle.success("admin", loopback, begun=True)
    assert throttle.check("admin", "10.9.9.9") is None  # and a success there clears the account's count


def test_an_ip_is_locked_after_n_failures_across_users(throttle: Throttle) -> None:
    for i in range(5):
        throttle.failure(f"user{i}", "203.0.113.5")
    wait = throttle.check("someone-new", "203.0.113.5")
    assert wait is not None and wait > 0
    assert throttle.check("someone-new", "203.0.113.6") is None
    assert throttle.check("user0", "203.0.113.6") is None  # each user had only one failure


def test_success_resets_the_username_but_not_the_ip(throttle: Throttle) -> None:
    for i in range(5 * USER_CEILING - 1):
        throttle.failure("alice", f"10.0.{i}.1")
    throttle.success("alice", "10.0.0.1")
    for i in range(5 * USER_CEILING - 1):
        throttle.failure("alice", f"10.1.{i}.1")
    assert throttle.check("alice", None) is None  # the counter started again

    for _ in range(4):
        throttle.failure("mallory", "198.51.100.9")
    throttle.success("mallory-own-account", "198.51.100.9")
    throttle.failure("victim", "198.51.100.9")
    assert throttle.check("anyone", "198.51.100.9") is not None  # the IP count survived the success


def test_failures_outside_the_window_are_forgotten(throttle: Throttle, clock: FakeClock) -> None:
    for _ in range(4):
        throttle.failure("alice", "10.0.0.1")
        clock.now += 10
    clock.now += 300 - 40 + 1  # the first failure is now older than the window
    throttle.failure("alice", "10.0.0.1")
    assert throttle.check("alice", "10.0.0.1") is None
    clock.now += 301  # all forgotten
    for _ in range(4):
        throttle.failure("alice", "10.0.0.1")
    assert throttle.check("alice", "10.0.0.1") is None
    throttle.failure("alice", "10.0.0.1")
    assert throttle.check("alice", "10.0.0.1") is not None


def test_hammering_does_not_extend_the_lockout(throttle: Throttle, clock: FakeClock) -> None:
    for _ in range(5 * USER_CEILING):
        throttle.failure("alice", None)
    clock.now += 100
    for _ in range(20):
        throttle.failure("alice", None)
    assert throttle.check("alice", None) == pytest.approx(200.0)
    throttle.success("alice", None)  # cannot lift a lockout either
    assert throttle.check("alice", None) == pytest.approx(200.0)


def test_memory_is_bounded_and_lockouts_survive_floods(clock: FakeClock) -> None:
    throttle = Throttle(max_failures=3, window=60, lockout=600, clock=clock, max_entries=100)
    for _ in range(3 * USER_CEILING):
        throttle.failure("victim", None)
    assert throttle.check("victim", None) is not None
    for i in range(5000):
        throttle.failure(None, f"ip-{i}")
        assert len(throttle) <= 100
    assert throttle.check("victim", None) is not None
    clock.now += 61  # the flood's entries are stale now, and go first
    throttle.failure(None, "fresh")
    assert throttle.check("victim", None) is not None


def test_counting_is_thread_safe(clock: FakeClock) -> None:
    throttle = Throttle(max_failures=801, window=60, lockout=60, clock=clock)

    def work() -> None:
        for _ in range(100):
            throttle.failure(None, "10.0.0.1")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.check(None, "10.0.0.1") is None  # not more than 800 counted (801 locks)
    throttle.failure(None, "10.0.0.1")
    assert throttle.check(None, "10.0.0.1") is not None  # and not fewer: the 801st locks


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Throttle(max_failures=0)
    with pytest.raises(ValueError):
        Throttle(window=0)
