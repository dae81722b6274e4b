"""Password hashing with scrypt (stdlib ``hashlib.scrypt``).

Why scrypt: it is memory-hard (n=2**14, r=8 needs 16 MiB per guess), which makes GPU/ASIC
guessing of a stolen database expensive, and it ships with Python, so there is no extra
dependency to install or audit.

Encoding: ``scrypt$n$r$p$salt_b64$hash_b64`` (standard base64). The parameters live in the
string, so hashes made with older (weaker) parameters keep verifying after the defaults are
raised, and :func:`needs_rehash` tells the caller to re-hash on the next successful login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MAX_PASSWORD_CHARS = 1024

# Upper bounds on parameters read back from a stored hash. A tampered database row must not be
# able to make one verification allocate gigabytes or spin for minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _validate(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    if not password:
        raise ValueError("password must not be empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters")
    return password.encode("utf-8")


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # maxmem: scrypt needs 128*r*n bytes (plus p*128*r); OpenSSL's default cap is 32 MiB,
    # which larger (still bounded) parameters would exceed.
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=128 * r * (n + p + 2) + 1024 * 1024)


def hash_password(password: str) -> str:
    """A new salted scrypt hash of *password*; ValueError if it is empty or too long."""
    secret = _validate(password)
    salt = os.urandom(SALT_BYTES)
    key = _scrypt(secret, salt, N, R, P, KEY_BYTES)
    return "$".join(
        (SCHEME, str(N), str(R), str(P), base64.b64encode(salt).decode("ascii"), base64.b64encode(key).decode("ascii"))
    )


def parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """``(n, r, p, salt, key)`` from an encoded hash; ValueError if malformed or out of bounds."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not an scrypt password hash")
    try:
        n, r, p = (int(part, 10) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("malformed scrypt password hash") from exc
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError("scrypt parameters out of range")
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        raise ValueError("scrypt salt or key has a bad length")
    return n, r, p, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """Whether *password* matches *encoded*. False (never an exception) for malformed hashes
    and for passwords that :func:`hash_password` would refuse. The final comparison is
    constant-time (:func:`hmac.compare_digest`)."""
    try:
        n, r, p, salt, key = parse(encoded)
        secret = _validate(password)
    except (TypeError, ValueError):
        return False
    candidate = _scrypt(secret, salt, n, r, p, len(key))
    return hmac.compare_digest(candidate, key)


def needs_rehash(encoded: str) -> bool:
    """True when *encoded* was made with other parameters than today's defaults (or is
    unreadable), so the caller should store a fresh hash after the next successful check."""
    try:
        n, r, p, salt, key = parse(encoded)
    except ValueError:
        return True
    return (n, r, p, len(salt), len(key)) != (N, R, P, SALT_BYTES, KEY_BYTES)
