"""scrypt password hashing (sdrest.auth.passwords)."""

from __future__ import annotations

import base64

import pytest

from sdrest.auth import passwords


def test_round_trip_and_wrong_password() -> None:
    encoded = passwords.hash_password("correct horse battery staple")
    assert passwords.verify_password("correct horse battery staple", encoded)
    assert not passwords.verify_password("correct horse battery stapl", encoded)
    assert not passwords.verify_password("Correct horse battery staple", encoded)


def test_unicode_password_round_trips() -> None:
    encoded = passwords.hash_password("pässwörd-密码")
    assert passwords.verify_password("pässwörd-密码", encoded)
    assert not passwords.verify_password("passwort-密码", encoded)


def test_encoding_format_and_random_salt() -> None:
    first = passwords.hash_password("same")
    second = passwords.hash_password("same")
    assert first != second  # a fresh salt each time
    scheme, n, r, p, salt, key = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
    assert first.split("$")[4] != second.split("$")[4]
    assert "same" not in first


def test_parameters_are_read_from_the_string() -> None:
    # A hash made with other (cheaper) parameters still verifies: they come from the string.
    salt = b"0123456789abcdef"
    key = __import__("hashlib").scrypt(b"pw", salt=salt, n=2**10, r=4, p=2, dklen=32)
    encoded = f"scrypt${2**10}$4$2${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    assert passwords.parse(encoded)[:3] == (2**10, 4, 2)
    assert passwords.verify_password("pw", encoded)
    assert not passwords.verify_password("pw2", encoded)
    assert passwords.needs_rehash(encoded)
    assert not passwords.needs_rehash(passwords.hash_password("pw"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda parts: parts.__setitem__(5, base64.b64encode(b"\0" * 32).decode()),  # other key
        lambda parts: parts.__setitem__(4, base64.b64encode(b"x" * 16).decode()),  # other salt
        lambda parts: parts.__setitem__(1, str(2**13)),  # other n
        lambda parts: parts.__setitem__(2, "7"),  # other r
        lambda parts: parts.__setitem__(0, "bcrypt"),  # other scheme
        lambda parts: parts.__setitem__(1, "1000"),  # n not a power of two
        lambda parts: parts.__setitem__(1, str(2**30)),  # n beyond the bound (would need 128 GiB)
        lambda parts: parts.__setitem__(5, "not*base64"),
        lambda parts: parts.pop(),  # a field missing
    ],
)
def test_tampered_encoding_is_false_not_an_error(mutate) -> None:
    parts = passwords.hash_password("pw").split("$")
    mutate(parts)
    encoded = "$".join(parts)
    assert passwords.verify_password("pw", encoded) is False


@pytest.mark.parametrize("encoded", ["", "scrypt", "$$$$$", "plain-text-password"])
def test_garbage_hashes_never_verify(encoded: str) -> None:
    assert passwords.verify_password(encoded or "x", encoded) is False
    assert passwords.needs_rehash(encoded)


def test_empty_and_too_long_passwords_are_refused() -> None:
    with pytest.raises(ValueError):
        passwords.hash_password("")
    with pytest.raises(ValueError):
        passwords.hash_password("x" * 1025)
    encoded = passwords.hash_password("x" * 1024)  # the limit itself is fine
    assert passwords.verify_password("x" * 1024, encoded)
    assert not passwords.verify_password("", encoded)
    assert not passwords.verify_password("x" * 1025, encoded)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict is hmac.compare_digest's (a constant-time comparison), not an ``==`` beside it:
    a compare_digest that answers the opposite turns the verdict around."""
    encoded = passwords.hash_password("pw")
    calls = []
    real = passwords.hmac.compare_digest

    def inverted(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return not real(a, b)

    monkeypatch.setattr(passwords.hmac, "compare_digest", inverted)
    assert not passwords.verify_password("pw", encoded)
    assert passwords.verify_password("nope", encoded)
    assert len(calls) == 2 and all(isinstance(a, bytes) and len(a) == len(b) for a, b in calls)
