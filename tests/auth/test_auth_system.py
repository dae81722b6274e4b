"""Real Unix/PAM checks (sdrest.auth.system) against throw-away system accounts.

These tests create a real user (``useradd``/``chpasswd``), a real group and real PAM service
files under /etc/pam.d, and remove them again. They need root and the shadow tools, which CI
has; they fail (rather than skip) without them, so a CI image that lost them is noticed.

A failed PAM check sleeps ~2-3 s (pam_unix's and pam_faildelay's delay), so the failing cases
are few and deliberate.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pam
import pytest

from sdrest.auth import system


def _run(*cmd: str, input: str | None = None) -> None:
    subprocess.run(cmd, input=input, text=True, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tools() -> None:
    missing = [
        tool
        for tool in ("useradd", "userdel", "chpasswd", "groupadd", "groupdel", "gpasswd")
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
    ]
    if missing:
        pytest.fail(
            f"the system auth tests need the shadow tools ({', '.join(missing)} missing); "
            "install the 'passwd' package in the test image"
        )
    if os.geteuid() != 0:
        pytest.fail("the system auth tests create system users and PAM services: run them as root")


class Account:
    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password


@pytest.fixture
def account(tools: None) -> Iterator[Account]:
    user = Account(f"sdrest_t_{secrets.token_hex(4)}", "Pw-" + secrets.token_urlsafe(12))
    _run("useradd", "-M", "-s", "/usr/sbin/nologin", user.name)
    try:
        _run("chpasswd", input=f"{user.name}:{user.password}\n")
        yield user
    finally:
        subprocess.run(["userdel", user.name], capture_output=True, timeout=60)


@pytest.fixture
def group(tools: None) -> Iterator[str]:
    name = f"sdrest_g_{secrets.token_hex(4)}"
    _run("groupadd", name)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], capture_output=True, timeout=60)


@pytest.fixture
def pam_service(tools: None) -> Iterator:
    created: list[Path] = []

    def make(*lines: str) -> str:
        name = f"sdrest-test-{secrets.token_hex(4)}"
        path = Path("/etc/pam.d") / name
        path.write_text("\n".join(lines) + "\n")
        created.append(path)
        return name

    yield make
    for path in created:
        path.unlink(missing_ok=True)


# -- unix -------------------------------------------------------------------------------------


def test_unix_accepts_the_right_password(account: Account) -> None:
    assert system.UNIX_SERVICE == "login"
    assert system.unix_authenticate(account.name, account.password, None) == (True, "Success")


def test_unix_refuses_a_wrong_password(account: Account) -> None:
    ok, reason = system.unix_authenticate(account.name, account.password + "x", None)
    assert ok is False
    assert "Authentication failure" in reason
    assert account.password not in reason


def test_unix_refuses_an_unknown_user(tools: None) -> None:
    ok, reason = system.unix_authenticate(f"sdrest_nobody_{secrets.token_hex(4)}", "whatever", None)
    assert ok is False and reason


def test_unix_refuses_an_empty_password_even_where_pam_would_not(account: Account) -> None:
    _run("passwd", "-d", account.name)  # the account now has an empty password
    # common-auth's "pam_unix nullok" lets it in with an empty password...
    assert pam.PamAuthenticator().authenticate(account.name, "", service="login", resetcreds=False)
    # ...sdrest does not.
    assert system.unix_authenticate(account.name, "", None)[0] is False
    assert system.pam_authenticate(account.name, "", "login")[0] is False


def test_nul_and_oversized_input_is_a_refusal_not_an_error(account: Account) -> None:
    assert system.unix_authenticate(account.name, account.password + "\x00", None)[0] is False
    assert system.unix_authenticate(account.name + "\x00", account.password, None)[0] is False
    assert system.unix_authenticate(account.name, "x" * 5000, None)[0] is False


def test_group_restriction(account: Account, group: str) -> None:
    ok, reason = system.unix_authenticate(account.name, account.password, group)
    assert (ok, reason) == (False, f"not a member of group {group!r}")
    assert system.in_group(account.name, group) is False
    _run("gpasswd", "-a", account.name, group)
    assert system.in_group(account.name, group) is True
    assert system.unix_authenticate(account.name, account.password, group) == (True, "Success")
    # the account's primary group (useradd made a group of the same name) counts too
    assert system.unix_authenticate(account.name, account.password, account.name)[0] is True
    ok, reason = system.unix_authenticate(account.name, account.password, "sdrest_no_such_group")
    assert ok is False and "does not exist" in reason


def test_role_from_groups(account: Account, group: str) -> None:
    assert system.user_role_from_groups(account.name, None) == "user"
    assert system.user_role_from_groups(account.name, group) == "user"
    _run("gpasswd", "-a", account.name, group)
    assert system.user_role_from_groups(account.name, group) == "admin"
    assert system.user_role_from_groups("sdrest_nobody_x", group) == "user"


# -- pam --------------------------------------------------------------------------------------


def test_pam_with_a_custom_service(account: Account, pam_service) -> None:
    service = pam_service("auth required pam_unix.so", "account required pam_unix.so")
    assert system.pam_authenticate(account.name, account.password, service) == (True, "Success")
    ok, reason = system.pam_authenticate(account.name, "wrong-" + account.password, service)
    assert ok is False and "Authentication failure" in reason


def test_pam_service_that_denies(account: Account, pam_service) -> None:
    service = pam_service("auth requisite pam_deny.so", "account required pam_unix.so")
    ok, reason = system.pam_authenticate(account.name, account.password, service)
    assert ok is False and reason and reason != "Success"


def test_pam_account_stage_is_enforced(account: Account, pam_service) -> None:
    # The password is right, but the account stage says no.
    service = pam_service("auth required pam_unix.so", "account requisite pam_deny.so")
    ok, reason = system.pam_authenticate(account.name, account.password, service)
    assert ok is False and reason != "Success"


def test_pam_never_sets_credentials(account: Account, pam_service, monkeypatch: pytest.MonkeyPatch) -> None:
    # pam_setcred must not run: modules such as pam_group would change the *server's* groups.
    calls: list[str] = []

    class Spy(pam.PamAuthenticator):
        def __init__(self) -> None:
            super().__init__()
            for name in ("pam_authenticate", "pam_acct_mgmt", "pam_setcred"):
                real = getattr(self, name)
                setattr(self, name, lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a))[1])

    monkeypatch.setattr(pam, "PamAuthenticator", Spy)
    before = os.getgroups()
    service = pam_service("auth required pam_unix.so", "account required pam_unix.so")
    assert system.pam_authenticate(account.name, account.password, service) == (True, "Success")
    assert calls == ["pam_authenticate", "pam_acct_mgmt"]
    assert os.getgroups() == before
