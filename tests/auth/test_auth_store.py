"""The auth store (sdrest.auth.store), each test on a real SQLite file and on a real PostgreSQL
database (tests/auth/conftest.py), except what only a file has (its mode, its schema pragma)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from auth_helpers import AuthBackend
from helpers import FakeClock
from sdrest.auth import passwords
from sdrest.auth import store as store_module
from sdrest.auth.store import (
    AmbiguousKeyError,
    AuthStore,
    AuthStoreError,
    DuplicateUserError,
    UserNotFoundError,
    hash_key,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1700000000.0)


@pytest.fixture
def store(auth_backend: AuthBackend, clock: FakeClock):
    with auth_backend.open(clock) as s:
        yield s


# -- users ------------------------------------------------------------------------------------


def test_users_crud(store: AuthStore, clock: FakeClock) -> None:
    alice = store.add_user("alice", "pw-alice", role="admin")
    assert (alice.name, alice.role, alice.created_at, alice.disabled) == ("alice", "admin", clock.now, False)
    store.add_user("bob", "pw-bob")
    assert store.get_user("bob").role == "user"
    assert [u.name for u in store.list_users()] == ["alice", "bob"]
    assert store.get_user("carol") is None

    store.set_password("bob", "new-bob")
    assert store.check_password("bob", "pw-bob") is None
    assert store.check_password("bob", "new-bob").name == "bob"

    store.set_role("bob", "guest")
    assert store.get_user("bob").role == "guest"
    assert store.check_password("bob", "new-bob").role == "guest"

    store.remove_user("bob")
    assert store.get_user("bob") is None
    assert store.check_password("bob", "new-bob") is None
    assert [u.name for u in store.list_users()] == ["alice"]


def test_unknown_users_raise_lookup_errors(store: AuthStore) -> None:
    for call in (
        lambda: store.set_password("ghost", "pw"),
        lambda: store.set_role("ghost", "user"),
        lambda: store.remove_user("ghost"),
        lambda: store.set_disabled("ghost", True),
    ):
        with pytest.raises(UserNotFoundError):
            call()


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "ünï", "a/b", "a:b", "bob\n", "'; DROP TABLE users;--"])
def test_bad_usernames_are_refused(store: AuthStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.add_user(name, "pw")
    assert store.list_users() == []


def test_username_charset_and_case_sensitivity(store: AuthStore) -> None:
    store.add_user("a.b@c-d_E9", "pw1")
    store.add_user("x" * 64, "pw2")
    store.add_user("Alice", "upper")
    store.add_user("alice", "lower")  # a different user: names are case-sensitive
    assert store.check_password("Alice", "upper").name == "Alice"
    assert store.check_password("alice", "upper") is None
    assert store.check_password("ALICE", "upper") is None
    assert store.check_password("a.b@c-d_E9", "pw1") is not None


def test_duplicates_roles_and_passwords_are_validated(store: AuthStore) -> None:
    store.add_user("alice", "pw")
    with pytest.raises(DuplicateUserError):
        store.add_user("alice", "other")
    assert issubclass(DuplicateUserError, ValueError)
    assert store.check_password("alice", "pw") is not None  # the original is untouched
    with pytest.raises(ValueError):
        store.add_user("bob", "pw", role="root")
    with pytest.raises(ValueError):
        store.set_role("alice", "superuser")
    with pytest.raises(ValueError):
        store.add_user("bob", "")
    with pytest.raises(ValueError):
        store.set_password("alice", "")
    assert store.get_user("alice").role == "user"
    assert store.get_user("bob") is None


def test_disabled_users_cannot_log_in(store: AuthStore) -> None:
    store.add_user("alice", "pw")
    store.set_disabled("alice", True)
    assert store.get_user("alice").disabled is True
    assert store.check_password("alice", "pw") is None
    store.set_disabled("alice", False)
    assert store.check_password("alice", "pw").disabled is False


@pytest.mark.parametrize("name", ["nobody", "x" * 500, "bad name", ""])
def test_unknown_user_still_costs_one_kdf_verification(
    store: AuthStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    store.add_user("alice", "pw")
    store.check_password("nobody-warmup", "x")  # the dummy hash is made once, up front
    calls: list[str] = []
    real = passwords.verify_password

    def counting(password: str, encoded: str) -> bool:
        calls.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(passwords, "verify_password", counting)
    assert store.check_password(name, "pw") is None
    assert len(calls) == 1 and calls[0].startswith("scrypt$16384$8$1$")
    assert store.check_password("alice", "wrong") is None
    assert store.check_password("alice", "pw") is not None
    assert len(calls) == 3


def test_outdated_hashes_are_upgraded_on_login(
    auth_backend: AuthBackend, store: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "N", 2**10)
    store.add_user("alice", "pw")
    monkeypatch.undo()

    def stored() -> str:
        return auth_backend.rows("SELECT password_hash FROM users WHERE name = 'alice'")[0][0]

    assert stored().startswith("scrypt$1024$")
    assert store.check_password("alice", "wrong") is None
    assert stored().startswith("scrypt$1024$")  # a failed check changes nothing
    assert store.check_password("alice", "pw") is not None
    assert stored().startswith("scrypt$16384$")
    assert store.check_password("alice", "pw") is not None


def test_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with AuthStore(tmp_path / "data" / "auth.sqlite3") as s:
            s.add_user("alice", "pw")
            for name in ("auth.sqlite3", "auth.sqlite3-wal"):
                mode = stat.S_IMODE(os.stat(tmp_path / "data" / name).st_mode)
                assert mode == 0o600, (name, oct(mode))
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "auth.sqlite3"
    AuthStore(path).close()
    os.chmod(path, 0o644)
    with AuthStore(path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_closed_store_refuses_work(auth_backend: AuthBackend) -> None:
    s = auth_backend.open()
    s.close()
    with pytest.raises(AuthStoreError):
        s.list_users()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "auth.sqlite3"
    AuthStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(AuthStoreError, match="schema version 99"):
        AuthStore(path)


# -- API keys ---------------------------------------------------------------------------------


def test_keys_round_trip(store: AuthStore, clock: FakeClock) -> None:
    plaintext, key = store.create_key("ci", "user", owner="alice")
    assert plaintext.startswith("sdr_") and len(plaintext) == 4 + 43
    assert (key.name, key.role, key.owner, key.created_at, key.expires_at, key.revoked_at) == (
        "ci",
        "user",
        "alice",
        clock.now,
        None,
        None,
    )
    assert key.prefix == plaintext[:8]
    checked = store.check_key(plaintext)
    assert checked == key
    other, _ = store.create_key("other", "admin")
    assert other != plaintext
    assert store.check_key(other).role == "admin"


def test_wrong_keys_are_rejected(store: AuthStore) -> None:
    plaintext, _ = store.create_key("ci", "user")
    flipped = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    for candidate in (
        flipped,
        plaintext[:-1],
        plaintext + "x",
        plaintext[4:],
        "sdr_" + "A" * 43,
        "",
        plaintext.upper(),
        hash_key(plaintext),
        "sdr_" + "x" * 5000,
    ):
        assert store.check_key(candidate) is None, candidate
    assert store.check_key(plaintext) is not None


def test_revoked_keys_are_rejected(store: AuthStore, clock: FakeClock) -> None:
    first, k1 = store.create_key("one", "user")
    second, k2 = store.create_key("two", "user")
    clock.now += 5
    assert store.revoke_key(k1.id) is True
    assert store.check_key(first) is None
    assert store.revoke_key(k1.id) is False  # already revoked
    assert store.check_key(second) is not None  # only that one
    assert store.revoke_key(k2.prefix) is True  # by display prefix
    assert store.check_key(second) is None
    assert store.revoke_key("sdr_nope") is False
    listed = {k.id: k for k in store.list_keys()}
    assert listed[k1.id].revoked_at == clock.now


def test_revoking_an_ambiguous_prefix_is_refused(store: AuthStore, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = iter(range(100))
    monkeypatch.setattr(store_module.secrets, "token_urlsafe", lambda n: f"SAME{next(counter):039d}")
    a, ka = store.create_key("a", "user")
    b, kb = store.create_key("b", "user")
    assert ka.prefix == kb.prefix == "sdr_SAME"
    with pytest.raises(AmbiguousKeyError):
        store.revoke_key("sdr_SAME")
    assert store.check_key(a) is not None and store.check_key(b) is not None
    assert store.revoke_key(ka.id)
    assert store.revoke_key("sdr_SAME")  # now only one active key has it
    assert store.check_key(b) is None


def test_expired_keys_are_rejected(store: AuthStore, clock: FakeClock) -> None:
    plaintext, key = store.create_key("temp", "guest", expires_at=clock.now + 60)
    assert key.expires_at == clock.now + 60
    clock.now += 59
    assert store.check_key(plaintext) is not None
    clock.now += 1
    assert store.check_key(plaintext) is None
    with pytest.raises(ValueError):
        store.create_key("past", "user", expires_at=clock.now - 1)


def test_key_validation(store: AuthStore) -> None:
    with pytest.raises(ValueError):
        store.create_key("x", "root")
    with pytest.raises(ValueError):
        store.create_key("", "user")
    with pytest.raises(ValueError):
        store.create_key("x", "user", owner="not a name")
    assert store.list_keys() == []


def test_keys_die_with_their_owner(store: AuthStore) -> None:
    store.add_user("alice", "pw")
    mine, _ = store.create_key("mine", "user", owner="alice")
    service, _ = store.create_key("svc", "user")
    store.set_disabled("alice", True)
    assert store.check_key(mine) is None
    store.set_disabled("alice", False)
    assert store.check_key(mine) is not None
    store.remove_user("alice")
    assert store.check_key(mine) is None
    store.add_user("alice", "pw2")  # a new alice does not inherit the old alice's keys
    assert store.check_key(mine) is None
    assert store.check_key(service) is not None


def test_a_key_never_outranks_its_owner(store: AuthStore) -> None:
    # The review: after `sdrest users role alice guest` her user-role key still submitted jobs.
    store.add_user("alice", "pw", role="admin")
    admin_key, _ = store.create_key("ops", "admin", owner="alice")
    user_key, _ = store.create_key("bot", "user", owner="alice")
    assert (store.check_key(admin_key).role, store.check_key(user_key).role) == ("admin", "user")
    store.set_role("alice", "guest")
    assert (store.check_key(admin_key).role, store.check_key(user_key).role) == ("guest", "guest")
    store.set_role("alice", "user")
    assert (store.check_key(admin_key).role, store.check_key(user_key).role) == ("user", "user")
    # An owner that is not a local user (a Unix or PAM account) keeps the key's own role.
    unix_key, _ = store.create_key("cron", "user", owner="carol")
    assert store.check_key(unix_key).role == "user"


def test_listing_and_the_database_never_hold_the_plaintext_key(auth_backend: AuthBackend, store: AuthStore) -> None:
    plaintexts = [store.create_key(f"k{i}", "user")[0] for i in range(3)]
    listed = store.list_keys()
    assert [k.prefix for k in listed] == [p[:8] for p in plaintexts]
    for key in listed:
        text = repr(key) + repr(key.to_dict())
        assert not any(p in text or p[8:] in text for p in plaintexts)
    store.close()
    data = auth_backend.dump()
    for plaintext in plaintexts:
        assert hash_key(plaintext).encode() in data  # we are looking at the right bytes
        assert plaintext.encode() not in data
        assert plaintext[8:].encode() not in data  # not even the secret part alone
        assert plaintext[8:24].encode() not in data


def test_password_is_not_stored_in_clear(auth_backend: AuthBackend, store: AuthStore) -> None:
    store.add_user("alice", "very-secret-password-123")
    store.close()
    data = auth_backend.dump()
    assert b"alice" in data and b"scrypt$" in data
    assert b"very-secret-password-123" not in data


# -- JWT revocations --------------------------------------------------------------------------


def test_token_revocations_persist_and_expire(auth_backend: AuthBackend, clock: FakeClock) -> None:
    with auth_backend.open(clock) as s:
        assert s.is_token_revoked("jti-1") is False
        s.revoke_token("jti-1", clock.now + 100)
        s.revoke_token("jti-2", clock.now + 10)
        s.revoke_token("jti-2", clock.now + 5)  # revoking twice keeps the later expiry
    with auth_backend.open(clock) as s:  # a restart
        assert s.is_token_revoked("jti-1") and s.is_token_revoked("jti-2")
        assert not s.is_token_revoked("jti-3")
        clock.now += 10
        assert s.purge_expired_revocations() == 1
        assert not s.is_token_revoked("jti-2")
        assert s.is_token_revoked("jti-1")
        assert s.purge_expired_revocations() == 0


# -- audit rows -------------------------------------------------------------------------------


def test_attempts_are_recorded_newest_first_and_filtered(store: AuthStore, clock: FakeClock) -> None:
    store.record_attempt("password", "alice", "10.0.0.1", "failure", "bad password")
    clock.now += 1
    store.record_attempt("password", "alice", "10.0.0.1", "success", None)
    clock.now += 1
    store.record_attempt("api-key", None, "10.0.0.2", "failure", "unknown key")
    clock.now += 1
    store.record_attempt("password", "bob", "10.0.0.3", "throttled", "locked out")
    rows = store.attempts()
    assert [r["outcome"] for r in rows] == ["throttled", "failure", "success", "failure"]
    assert rows[0] == {
        "id": rows[0]["id"],
        "time": clock.now,
        "method": "password",
        "username": "bob",
        "client_ip": "10.0.0.3",
        "outcome": "throttled",
        "reason": "locked out",
    }
    assert [r["outcome"] for r in store.attempts(username="alice")] == ["success", "failure"]
    assert [r["username"] for r in store.attempts(limit=2, offset=1)] == [None, "alice"]
    assert store.attempts(username="nobody") == []
    assert store.purge_attempts(older_than=clock.now - 1.5) == 2
    assert len(store.attempts()) == 2
    with pytest.raises(ValueError):
        store.record_attempt("password", "alice", "1.2.3.4", "maybe", None)


def test_client_controlled_audit_fields_are_clipped(store: AuthStore) -> None:
    store.record_attempt("password", "u" * 10_000, "ip", "failure", "r" * 10_000)
    row = store.attempts()[0]
    assert len(row["username"]) == 256 and len(row["reason"]) == 256


def test_concurrent_writers_lose_nothing(store: AuthStore) -> None:
    def work(n: int) -> None:
        for i in range(25):
            store.record_attempt("password", f"user{n}", "1.1.1.1", "failure", str(i))
            store.revoke_token(f"{n}-{i}", 2e9)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.attempts(limit=1000)) == 200
    assert all(store.is_token_revoked(f"{n}-{i}") for n in range(8) for i in range(25))


def test_a_second_process_style_connection_sees_changes(auth_backend: AuthBackend) -> None:
    # The CLI and the server (or two nodes) open the same store: changes by one reach the other.
    with auth_backend.open() as server, auth_backend.open() as cli:
        cli.add_user("alice", "pw")
        plaintext, key = cli.create_key("k", "user")
        assert server.check_password("alice", "pw") is not None
        assert server.check_key(plaintext) is not None
        cli.revoke_key(key.id)
        assert server.check_key(plaintext) is None
        cli.set_disabled("alice", True)
        assert server.check_password("alice", "pw") is None
        generation = cli.revoke_sessions("alice")
        assert server.token_generation("alice") == generation
        cli.revoke_token("jti-1", 2e9)
        assert server.is_token_revoked("jti-1")


# -- shared secrets ---------------------------------------------------------------------------


def test_a_shared_secret_is_made_once_and_kept(auth_backend: AuthBackend) -> None:
    with auth_backend.open() as first, auth_backend.open() as second:
        assert first.shared_secret("jwt_secret", lambda: "made-by-first") == "made-by-first"
        assert second.shared_secret("jwt_secret", lambda: "made-by-second") == "made-by-first"
        assert second.shared_secret("other", lambda: "another") == "another"  # one per name
    with auth_backend.open() as reopened:
        assert reopened.shared_secret("jwt_secret", lambda: "made-later") == "made-by-first"


def test_processes_starting_at_once_agree_on_the_shared_secret(auth_backend: AuthBackend) -> None:
    stores = [auth_backend.open() for _ in range(2)]
    start = threading.Barrier(8)
    found: list[str] = []

    def node(n: int) -> None:
        start.wait()
        found.append(stores[n % 2].shared_secret("jwt_secret", lambda: f"secret-{n}"))

    threads = [threading.Thread(target=node, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert len(found) == 8 and len(set(found)) == 1 and found[0].startswith("secret-")


# -- client-controlled text -------------------------------------------------------------------


def test_nul_characters_from_clients_are_neither_stored_nor_an_error(store: AuthStore) -> None:
    # PostgreSQL text cannot hold NUL; both backends treat it alike: replaced in the audit log,
    # "not found" in lookups (no stored name or id can contain it).
    store.add_user("alice", "pw")
    store.record_attempt("password", "ali\0ce", "10.0.0.1", "failure", "bad\0reason")
    row = store.attempts()[0]
    assert (row["username"], row["reason"]) == ("ali\ufffdce", "bad\ufffdreason")
    assert store.attempts(username="ali\0ce") == [row]
    assert store.get_user("alice\0") is None
    assert store.check_password("alice\0", "pw") is None
    assert store.token_generation("alice\0") == 0
    assert store.is_token_revoked("jti\0") is False
    assert store.rotated_at("jti\0") is None
    assert store.get_key("id\0") is None
    assert store.revoke_key("sdr_\0") is False
    assert store.check_key("sdr_\0" + "A" * 42) is None
