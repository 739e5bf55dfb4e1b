"""Recovery codes: their format and digest. Pure functions.

A code is three groups of four base32 characters (`k7qa-m2xp-9…`, 60 random bits), easy to
read aloud and type. Only a digest is stored, bound to its account: the same text could
never unlock another account, and the unique index never sees two accounts collide.
"""

from __future__ import annotations

import secrets
import uuid

from globeguard.account.mfa.totp import normalise
from globeguard.kit.crypto import sha256_hex

COUNT = 10
GROUPS = 3
GROUP_SIZE = 4
LENGTH = GROUPS * GROUP_SIZE
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, 5 bits a character
_ALLOWED = frozenset(ALPHABET)


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP_SIZE] for i in range(0, LENGTH, GROUP_SIZE))


def new_codes(count: int = COUNT) -> list[str]:
    return [new_code() for _ in range(count)]


def canonical(code: str) -> str | None:
    """The code as stored (no dashes, lower case), or None when it cannot be one."""
    text = normalise(code)
    if len(text) != LENGTH or not set(text) <= _ALLOWED:
        return None
    return text


def digest(user_id: uuid.UUID, canonical_code: str) -> str:
    # A fast digest is enough for 60 random bits (no password, nothing to stretch): a leaked
    # digest still takes ~2^59 SHA-256 guesses per code, and online guesses meet the lockout.
    return sha256_hex(f"{user_id}:{canonical_code}")
