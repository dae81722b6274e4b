"""Checking system (Unix/PAM) accounts with python-pam.

``auth = "pam"`` runs a PAM service named by the operator (default ``sdrest``; the package
can ship ``/etc/pam.d/sdrest``), so the site decides the stack (LDAP, sssd, 2FA-free
pam_unix, ...). ``auth = "unix"`` means "the machine's own login passwords" and uses the
``login`` service: on Debian/Ubuntu ``/etc/pam.d/login`` is ``@include common-auth`` plus
``common-account``, i.e. pam_unix against /etc/passwd + /etc/shadow (and whatever else the
distribution put in common-auth), with pam_nologin honouring ``/etc/nologin``. ``login`` exists
on every Debian-like system and on RHEL-likes (where it includes ``system-auth``), while
``other`` is often a hard ``pam_deny`` on hardened hosts, so ``login`` is the portable choice.

Privileges: pam_unix verifies a password by reading /etc/shadow. A server running as root, or
as a user in group ``shadow`` (Debian), can check any account. A server running as an ordinary
user cannot read /etc/shadow; pam_unix then falls back to its setgid helper ``unix_chkpwd``,
which only checks the password *of the user running the process*, so such a server can
authenticate its own account and nobody else. (Adding the service user to ``shadow`` fixes
that, at the cost of letting it read every password hash.)

Behaviour worth knowing:

* pam_unix (and ``pam_faildelay`` in ``login``) make a failed check sleep ~2-3 s inside
  ``pam_authenticate``. That blocks the calling thread; the HTTP layer should throttle before
  calling in here (:mod:`sdrest.auth.throttle`).
* Only the ``auth`` and ``account`` stages run: ``pam_setcred`` is skipped
  (``resetcreds=False``) because modules such as pam_group would change the *server process's*
  supplementary groups, and we only want a yes/no answer, not a login session.
* Empty passwords are refused here, before PAM: common-auth uses ``pam_unix nullok``, which
  would let an account with an empty password in with an empty password.

None of these functions raises for bad credentials; they return ``(False, reason)``. The reason
is PAM's message (``pam_strerror``) or ours; it never contains the password.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd

log = logging.getLogger(__name__)

#: The PAM service behind ``auth = "unix"`` (see the module docstring for why ``login``).
UNIX_SERVICE = "login"
#: Longest password handed to PAM (pam_unix itself stops at 512 bytes).
MAX_PASSWORD_CHARS = 1024


def pam_authenticate(username: str, password: str, service: str) -> tuple[bool, str]:
    """Run PAM *service*'s auth and account stages for *username*; ``(ok, reason)``."""
    if not username or not password:
        return False, "empty username or password"
    if len(password) > MAX_PASSWORD_CHARS or len(username) > 256:
        return False, "username or password too long"
    if "\x00" in username or "\x00" in password or "\x00" in service:
        return False, "NUL character in username or password"
    try:
        import pam
    except ImportError:  # pragma: no cover - a dependency of the package
        return False, "python-pam is not installed"
    # A fresh authenticator per call: one instance is not safe to share between threads.
    authenticator = pam.PamAuthenticator()
    try:
        ok = authenticator.authenticate(username, password, service=service, resetcreds=False)
    except Exception as exc:  # noqa: BLE001 - libpam missing, encoding errors: all mean "no"
        log.warning("PAM service %r failed to run: %s", service, type(exc).__name__)
        return False, f"PAM error: {type(exc).__name__}"
    reason = authenticator.reason
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return bool(ok), str(reason or ("Success" if ok else "Authentication failure"))


def in_group(username: str, group: str) -> bool:
    """Whether *username* is in *group*, as its primary group or a supplementary one (as NSS
    reports it, so LDAP/sssd groups count too). False for unknown users or groups."""
    try:
        entry = pwd.getpwnam(username)
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return False
    if entry.pw_gid == gid:
        return True
    try:
        return gid in os.getgrouplist(username, entry.pw_gid)
    except OSError:
        return username in grp.getgrgid(gid).gr_mem


def unix_authenticate(username: str, password: str, group: str | None = None) -> tuple[bool, str]:
    """Check a system account's password (PAM service :data:`UNIX_SERVICE`) and, when *group*
    is given, that the account belongs to it. ``(ok, reason)``.

    The password is checked first and the group second, so a wrong password and a user outside
    the group take the same (slow) path and response time does not reveal group membership.
    """
    ok, reason = pam_authenticate(username, password, UNIX_SERVICE)
    if not ok:
        return False, reason
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            return False, f"group {group!r} does not exist"
        if not in_group(username, group):
            return False, f"not a member of group {group!r}"
    return True, reason


def user_role_from_groups(username: str, admin_group: str | None) -> str:
    """``"admin"`` for members of *admin_group*, ``"user"`` for everyone else (system accounts
    are never ``guest``: they proved a password)."""
    if admin_group and in_group(username, admin_group):
        return "admin"
    return "user"


def canonical_name(username: str) -> str:
    """The account's own spelling of *username* (PAM and NSS may accept "Alice" for "alice");
    the name itself when NSS does not know it."""
    try:
        return pwd.getpwnam(username).pw_name
    except KeyError:
        return username
