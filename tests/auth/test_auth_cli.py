"""``sdrest users ...`` and ``sdrest keys ...`` run as real subprocesses on a real store (the data
folder's SQLite file, or a real PostgreSQL database named by ``--store``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auth_helpers import PASSWORD, add_user_with_key, no_secret, sdrest
from sdrest.auth.commands import parse_expiry
from sdrest.auth.store import AuthStore
from server_helpers import free_port


def test_users_lifecycle(tmp_path: Path) -> None:
    added = sdrest(
        "users", "add", "alice", "--password-stdin", "--role", "admin", data_dir=tmp_path, stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    no_secret(added)
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        assert store.check_password("alice", PASSWORD).role == "admin"  # the newline was dropped

    listed = sdrest("users", "list", data_dir=tmp_path)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ROLE", "CREATED"]
    assert row.split()[:2] == ["alice", "admin"]
    assert time.strftime("%Y-%m-%d", time.gmtime()) in row

    changed = sdrest("users", "passwd", "alice", "--password-stdin", data_dir=tmp_path, stdin="n3w-pass\n")
    assert changed.returncode == 0, changed.stderr
    no_secret(changed, "n3w-pass")
    assert sdrest("users", "role", "alice", "guest", data_dir=tmp_path).returncode == 0
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        assert store.check_password("alice", PASSWORD) is None
        assert store.check_password("alice", "n3w-pass").role == "guest"

    assert sdrest("users", "disable", "alice", data_dir=tmp_path).returncode == 0
    assert "disabled" in sdrest("users", "list", data_dir=tmp_path).stdout
    assert sdrest("users", "enable", "alice", data_dir=tmp_path).returncode == 0

    assert sdrest("users", "remove", "alice", data_dir=tmp_path).returncode == 0
    assert "alice" not in sdrest("users", "list", data_dir=tmp_path).stdout


def test_password_flag_and_exit_codes(tmp_path: Path) -> None:
    ok = sdrest("users", "add", "bob", "--password", PASSWORD, data_dir=tmp_path)
    assert ok.returncode == 0
    no_secret(ok)
    duplicate = sdrest("users", "add", "bob", "--password", "other", data_dir=tmp_path)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_role = sdrest("users", "add", "carol", "--password", "pw", "--role", "root", data_dir=tmp_path)
    assert bad_role.returncode == 2
    assert sdrest("users", "add", "bad name", "--password", "pw", data_dir=tmp_path).returncode == 2
    empty = sdrest("users", "add", "carol", "--password-stdin", data_dir=tmp_path, stdin="\n")
    assert empty.returncode == 2 and "empty" in empty.stderr
    no_tty = sdrest("users", "add", "carol", data_dir=tmp_path)  # stdin is a pipe, not a terminal
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    both = sdrest("users", "add", "carol", "--password", "a", "--password-stdin", data_dir=tmp_path)
    assert both.returncode == 2
    assert sdrest("users", "role", "bob", "wizard", data_dir=tmp_path).returncode == 2
    assert sdrest("users", "remove", "nobody", data_dir=tmp_path).returncode == 1
    assert sdrest("users", "passwd", "nobody", "--password", "x", data_dir=tmp_path).returncode == 1
    assert sdrest("users", "role", "nobody", "user", data_dir=tmp_path).returncode == 1
    assert sdrest("users", data_dir=tmp_path).returncode == 2
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        assert [u.name for u in store.list_users()] == ["bob"]
        assert store.check_password("bob", PASSWORD) is not None


def test_data_dir_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "sdrest.yaml"
    config.write_text(f"data_dir: {tmp_path / 'state'}\n")
    assert sdrest("users", "add", "dora", "--password", "pw", "--config", str(config)).returncode == 0
    assert (tmp_path / "state" / "auth.sqlite3").exists()
    assert "dora" in sdrest("users", "list", "--config", str(config)).stdout
    assert sdrest("users", "list", "--config", str(tmp_path / "missing.yaml")).returncode == 2


def test_keys_lifecycle(tmp_path: Path) -> None:
    created = sdrest(
        "keys", "create", "--name", "ci", "--role", "user", "--owner", "ci-bot", "--expires", "12h", data_dir=tmp_path
    )
    assert created.returncode == 0, created.stderr
    (plaintext,) = created.stdout.split()  # the key, alone on stdout
    assert "only time" in created.stderr and plaintext not in created.stderr
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        key = store.check_key(plaintext)
        assert key is not None and (key.name, key.role, key.owner) == ("ci", "user", "ci-bot")
        assert key.expires_at == pytest.approx(time.time() + 12 * 3600, abs=120)

    listed = sdrest("keys", "list", data_dir=tmp_path)
    assert listed.returncode == 0
    assert plaintext not in listed.stdout and plaintext[8:20] not in listed.stdout
    assert plaintext[:8] in listed.stdout and key.id in listed.stdout and "active" in listed.stdout

    revoked = sdrest("keys", "revoke", key.id, data_dir=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in sdrest("keys", "list", data_dir=tmp_path).stdout
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        assert store.check_key(plaintext) is None
    assert sdrest("keys", "revoke", key.id, data_dir=tmp_path).returncode == 1
    assert sdrest("keys", "revoke", "sdr_nope", data_dir=tmp_path).returncode == 1


def test_keys_usage_errors(tmp_path: Path) -> None:
    assert sdrest("keys", "create", "--name", "x", "--role", "root", data_dir=tmp_path).returncode == 2
    assert sdrest("keys", "create", "--role", "user", data_dir=tmp_path).returncode == 2
    assert (
        sdrest("keys", "create", "--name", "x", "--role", "user", "--expires", "soon", data_dir=tmp_path).returncode
        == 2
    )
    assert (
        sdrest(
            "keys", "create", "--name", "x", "--role", "user", "--expires", "2001-01-01", data_dir=tmp_path
        ).returncode
        == 2
    )
    assert sdrest("keys", data_dir=tmp_path).returncode == 2
    assert sdrest("keys", "list", data_dir=tmp_path).stdout.splitlines()[1:] == []


def test_existing_commands_still_parse() -> None:
    from sdrest.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "--port", "9000"]).port == "9000"
    assert parser.parse_args(["selftest", "--size", "32"]).size == 32
    args = parser.parse_args(["users", "add", "x", "--data-dir", "d"])
    assert (args.command, args.users_command, args.name, args.data_dir, args.role) == ("users", "add", "x", "d", "user")


def test_parse_expiry() -> None:
    now = 1_700_000_000.0
    assert parse_expiry("30d", now) == now + 30 * 86400
    assert parse_expiry("12h", now) == now + 12 * 3600
    assert parse_expiry("90m", now) == now + 5400
    assert parse_expiry("2w", now) == now + 14 * 86400
    assert parse_expiry("2030-01-31", now) == 1896048000.0  # 00:00 UTC
    assert parse_expiry("2030-01-31T02:00:00+02:00", now) == 1896048000.0
    for bad in ("0d", "soon", "12x", "2020-01-01", "-5d"):
        with pytest.raises(ValueError):
            parse_expiry(bad, now)


def test_the_server_alias_passes_users_and_keys_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdrest.cli import server_main

    with AuthStore(tmp_path / "auth.sqlite3") as store:
        store.add_user("erin", "pw", role="guest")
    assert server_main(["users", "list", "--data-dir", str(tmp_path)]) == 0
    assert "erin" in capsys.readouterr().out
    assert server_main(["keys", "list", "--data-dir", str(tmp_path)]) == 0


def test_terminal_prompt_asks_twice_and_never_echoes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from sdrest.auth import commands

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, PASSWORD, PASSWORD, "typo"])
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(commands.getpass, "getpass", fake_getpass)
    base = {"command": "users", "data_dir": str(tmp_path), "role": "user", "password": None, "password_stdin": False}
    assert commands.run({**base, "users_command": "add", "name": "fay"}, stdin=Tty()) == 0
    assert prompts == ["New password: ", "Repeat password: "]
    assert commands.run({**base, "users_command": "add", "name": "gus"}, stdin=Tty()) == 2
    out = capsys.readouterr()
    assert "do not match" in out.err
    assert PASSWORD not in out.out + out.err
    with AuthStore(tmp_path / "auth.sqlite3") as store:
        assert store.check_password("fay", PASSWORD) is not None
        assert store.get_user("gus") is None


# -- a shared PostgreSQL store ----------------------------------------------------------------


def test_users_and_keys_on_a_postgresql_store(tmp_path: Path, postgres_url: str) -> None:
    plaintext = add_user_with_key(postgres_url, tmp_path)
    with AuthStore(postgres_url) as store:
        assert store.check_password("alice", PASSWORD).role == "user"
        assert store.check_key(plaintext).owner == "alice"
    # SDREST_STORE is read as `sdrest serve` reads it.
    listed = sdrest("users", "list", data_dir=tmp_path, env={"SDREST_STORE": postgres_url})
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:2] == ["alice", "user"]
    assert sdrest("users", "disable", "alice", "--store", postgres_url, data_dir=tmp_path).returncode == 0
    with AuthStore(postgres_url) as store:
        assert store.check_password("alice", PASSWORD) is None and store.check_key(plaintext) is None
    assert not (tmp_path / "auth.sqlite3").exists()  # nothing went to the data folder


def test_a_bad_store_is_named_and_its_password_hidden(tmp_path: Path) -> None:
    bad = sdrest("users", "list", "--store", "mysql://admin:pw-123@db/auth", data_dir=tmp_path)
    assert bad.returncode == 2
    assert "store: 'mysql://admin:***@db/auth' is not sqlite:///PATH or postgresql://" in bad.stderr
    unreachable = sdrest(
        "keys", "list", "--store", f"postgresql://admin:pw-123@127.0.0.1:{free_port()}/auth", data_dir=tmp_path
    )
    assert unreachable.returncode == 1
    assert "cannot connect to the auth store at postgresql://admin:***@127.0.0.1" in unreachable.stderr
    for result in (bad, unreachable):
        no_secret(result, "pw-123")
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "auth.sqlite3").exists()  # no fallback to the data folder's file
