"""Staff passwords for signing in to the pages (issue 12): argon2id hashes (argon2-cffi with
its RFC 9106 low-memory profile), never the password itself. Access to personal data is
limited to those who need it and withdrawn at once (152-ФЗ ст.19)."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.errors import EngineError

MIN_LENGTH = 12
MAX_LENGTH = 256
_hasher = PasswordHasher()


@cache
def _dummy() -> str:
    """Verified when the account is unknown, so a miss costs the same time as a wrong
    password (made on first use: a hash costs ~0.5 s)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def check_strength(password: str) -> None:
    """The rule a new password must meet: 12-256 characters, not all of one kind."""
    if len(password) < MIN_LENGTH:
        raise EngineError(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise EngineError(f"password: at most {MAX_LENGTH} characters")
    if len(set(password)) < 4:
        raise EngineError("password: at least 4 different characters")


def generate_password() -> str:
    """A fresh one-time password (16 URL-safe characters) for the administrator's page to
    show once; it meets ``check_strength``."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if len(set(candidate)) >= 4:
            return candidate


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash`` (None: verify a dummy, return False)."""
    try:
        return _hasher.verify(stored_hash or _dummy(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
