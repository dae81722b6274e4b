"""``sdrest users ...`` and ``sdrest keys ...``: the command-line side of the auth store.

The parsers are declared in :mod:`sdrest.cli`; this module runs them. The store is the one
``sdrest serve`` would use with the same ``--store``/``--data-dir``/``--config`` (and
``SDREST_*`` environment): a PostgreSQL store is shared by every node. Exit codes: 0 done,
1 not found or refused by the store (duplicate user, nothing to revoke, a store that cannot be
reached), 2 usage errors (bad name, role, password, expiry or ``--store``; missing password
source). Passwords are read from
``--password``, ``--password-stdin`` or a terminal prompt (twice, never echoed) and are never
printed; an API key is printed exactly once, alone on standard output, so
``KEY=$(sdrest keys create ...)`` works, with the notes on standard error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from sdrest.auth.store import (
    AmbiguousKeyError,
    AuthStore,
    AuthStoreError,
    DuplicateUserError,
    UserNotFoundError,
    location,
    validate_username,
)
from sdrest.errors import SdrestError

OK, FAILED, USAGE = 0, 1, 2


class UsageError(SdrestError):
    """A bad argument: exit 2."""


def run(
    args: Mapping[str, Any],
    parser: argparse.ArgumentParser | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``sdrest users|keys <action>`` from parsed arguments; the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    group = args["command"]
    action = args.get(f"{group}_command")
    prog = f"sdrest {group}"
    handlers = _USER_ACTIONS if group == "users" else _KEY_ACTIONS
    if action not in handlers:
        print(f"{prog}: choose an action: {', '.join(handlers)} (see {prog} --help)", file=stderr)
        return USAGE
    try:
        store = _open_store(args)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=stderr)
        return USAGE
    except AuthStoreError as exc:  # unreachable, or a newer schema (the URL's password is hidden)
        print(f"{prog}: {exc}", file=stderr)
        return FAILED
    try:
        with store:
            return handlers[action](store, args, _Io(stdin, stdout, stderr, f"{prog} {action}"))
    except UsageError as exc:
        print(f"{prog} {action}: {exc}", file=stderr)
        return USAGE


class _Io:
    def __init__(self, stdin: TextIO, stdout: TextIO, stderr: TextIO, prog: str) -> None:
        self.stdin, self.stdout, self.stderr, self.prog = stdin, stdout, stderr, prog

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(f"{self.prog}: {text}", file=self.stderr)


def _open_store(args: Mapping[str, Any]) -> AuthStore:
    from sdrest.settings import Settings, SettingsError

    flags = {name: args[name] for name in ("config", "data_dir", "store") if name in args}
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:  # names the setting (store: ...) and never shows a password
        raise UsageError(str(exc)) from None
    return AuthStore(location(settings))


# -- passwords --------------------------------------------------------------------------------


def read_password(args: Mapping[str, Any], io: _Io, *, prompt: Callable[[str], str] | None = None) -> str:
    """The new password from ``--password``, ``--password-stdin`` or two terminal prompts
    (:func:`getpass.getpass`, which does not echo)."""
    prompt = prompt or getpass.getpass
    if args.get("password") is not None:
        return str(args["password"])
    if args.get("password_stdin"):
        text = io.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        return text
    if not io.stdin.isatty():
        raise UsageError("no password given: use --password-stdin (or run on a terminal to be prompted)")
    first = prompt("New password: ")
    if prompt("Repeat password: ") != first:
        raise UsageError("the passwords do not match")
    return first


# -- users ------------------------------------------------------------------------------------


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def _table(rows: Sequence[Sequence[str]], io: _Io) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        io.out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _users_add(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
    if store.get_user(args["name"]) is not None:  # before prompting for a password in vain
        io.err(f"user {args['name']!r} already exists")
        return FAILED
    password = read_password(args, io)
    try:
        store.add_user(args["name"], password, args["role"])
    except DuplicateUserError as exc:
        io.err(str(exc))
        return FAILED
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    io.out(f"added user {args['name']} ({args['role']})")
    return OK


def _users_list(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
    rows = [("NAME", "ROLE", "CREATED", "STATUS")]
    rows += [(u.name, u.role, _when(u.created_at), "disabled" if u.disabled else "active") for u in store.list_users()]
    _table(rows, io)
    return OK


def _users_change(change: Callable[[AuthStore, Mapping[str, Any], _Io], str]) -> Callable[..., int]:
    def handler(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
        try:
            message = change(store, args, io)
        except UserNotFoundError as exc:
            io.err(str(exc))
            return FAILED
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        io.out(message)
        return OK

    return handler


def _passwd(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    if store.get_user(args["name"]) is None:  # before prompting for a password in vain
        raise UserNotFoundError(f"no user {args['name']!r}")
    store.set_password(args["name"], read_password(args, io))
    return f"password of {args['name']} changed"


def _remove(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    store.remove_user(args["name"])
    return f"removed user {args['name']} (its API keys are revoked)"


def _role(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    store.set_role(args["name"], args["role"])
    return f"{args['name']} is now {args['role']}"


def _disable(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    store.set_disabled(args["name"], True)
    return f"disabled {args['name']}"


def _enable(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    store.set_disabled(args["name"], False)
    return f"enabled {args['name']}"


def _revoke_sessions(store: AuthStore, args: Mapping[str, Any], io: _Io) -> str:
    # Any account name: local users, and unix/pam accounts that have no row here.
    validate_username(args["name"])
    store.revoke_sessions(args["name"])
    return f"every token issued to {args['name']} so far is revoked (API keys are not: see keys revoke)"


_USER_ACTIONS: dict[str, Callable[[AuthStore, Mapping[str, Any], _Io], int]] = {
    "add": _users_add,
    "list": _users_list,
    "passwd": _users_change(_passwd),
    "remove": _users_change(_remove),
    "role": _users_change(_role),
    "disable": _users_change(_disable),
    "enable": _users_change(_enable),
    "revoke-sessions": _users_change(_revoke_sessions),
}


# -- keys -------------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")


def parse_expiry(text: str, now: float) -> float:
    """POSIX time from ``30d``/``12h``/``90m``/``2w``/``3600s`` (from *now*) or an ISO date or
    date-time (no zone: UTC). ValueError if unreadable or not in the future."""
    text = text.strip()
    match = _DURATION.fullmatch(text.lower())
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds <= 0:
            raise ValueError("the lifetime must be positive")
        return now + seconds
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"cannot read expiry {text!r}: use e.g. 30d, 12h or 2030-01-31") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    stamp = when.timestamp()
    if stamp <= now:
        raise ValueError(f"expiry {text!r} is in the past")
    return stamp


def _keys_create(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
    try:
        expires_at = None if args.get("expires") is None else parse_expiry(args["expires"], time.time())
        plaintext, key = store.create_key(args["name"], args["role"], owner=args.get("owner"), expires_at=expires_at)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if key.owner is not None and store.get_user(key.owner) is None:
        io.err(f"note: {key.owner!r} is not a local user (fine when it is a Unix/PAM account)")
    io.out(plaintext)
    io.stderr.write(
        f"created key {key.id} ({key.prefix}..., role {key.role}, "
        f"expires {_when(key.expires_at) if key.expires_at else 'never'})\n"
        "WARNING: this is the only time the key is shown; store it now. "
        "Only its hash is kept.\n"
    )
    return OK


def _key_status(expires_at: float | None, revoked_at: float | None, now: float) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def _keys_list(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
    now = time.time()
    rows = [("ID", "PREFIX", "NAME", "ROLE", "OWNER", "CREATED", "EXPIRES", "STATUS")]
    rows += [
        (
            k.id,
            k.prefix + "...",
            k.name,
            k.role,
            k.owner or "-",
            _when(k.created_at),
            _when(k.expires_at),
            _key_status(k.expires_at, k.revoked_at, now),
        )
        for k in store.list_keys()
    ]
    _table(rows, io)
    return OK


def _keys_revoke(store: AuthStore, args: Mapping[str, Any], io: _Io) -> int:
    try:
        revoked = store.revoke_key(args["key"])
    except AmbiguousKeyError as exc:
        io.err(str(exc))
        return FAILED
    if not revoked:
        io.err(f"no active key with id or prefix {args['key']!r}")
        return FAILED
    io.out(f"revoked {args['key']}")
    return OK


_KEY_ACTIONS: dict[str, Callable[[AuthStore, Mapping[str, Any], _Io], int]] = {
    "create": _keys_create,
    "list": _keys_list,
    "revoke": _keys_revoke,
}
