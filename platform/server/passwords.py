"""Passwords for the dashboard's sign-in, stored as scrypt hashes (never the password).

A stored hash reads `scrypt$<n>$<r>$<p>$<salt>$<hash>` (base64), so the cost can be raised
later and older hashes still verify. Checking a user that has no password (or does not exist)
still spends one scrypt, so the answer's timing does not tell which usernames exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MIN_LENGTH = 10
MAX_LENGTH = 1024  # scrypt reads all of it; no reason to take megabytes
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32  # about 16 MiB and a few tens of ms per check
_DUMMY = "scrypt$16384$8$1$" + "A" * 22 + "$" + "A" * 43


class PasswordRefused(ValueError):
    """The password is too short or too long; the message says so."""


def check_strength(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise PasswordRefused(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRefused(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; False (after the same work) when nothing is stored."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        password = ""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest + "==")
        computed = _scrypt(password, base64.b64decode(salt + "=="), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return stored is not None and hmac.compare_digest(computed, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_LENGTH, maxmem=64 * 1024**2
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")
