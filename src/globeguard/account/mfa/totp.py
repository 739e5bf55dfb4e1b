"""TOTP (RFC 6238) arithmetic and code formats: pure functions, no I/O and no clock.

A code is accepted for the current 30-second step or one step either side (clock drift
between the phone and the server), and only for a step later than the last one accepted:
each step's code works once, and a code older than one already used never works again.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from urllib.parse import quote, urlencode

import pyotp

ISSUER = "Globeguard"
PERIOD = 30
DIGITS = 6
# Steps either side of the current one that still count (±30 s of drift).
WINDOW = 1
# 160 bits, the HMAC-SHA1 block size RFC 4226 recommends.
SECRET_BYTES = 20
# Longer input is refused before any work: no code is anywhere near this long.
MAX_INPUT = 64

_DIGIT_CHARS = frozenset("0123456789")
_IGNORED = str.maketrans("", "", " -\t")


def new_secret() -> str:
    """A fresh shared secret: 160 random bits as base32 (32 characters, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def step_at(unix_seconds: float) -> int:
    """The time step a moment falls in."""
    return int(unix_seconds // PERIOD)


def code_at(secret: str, step: int) -> str:
    """The code an authenticator shows during `step`."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).generate_otp(step)


def normalise(code: str) -> str:
    """What the user meant: spaces, tabs and dashes dropped ("123 456", "abcd-efgh-…"),
    letters lower-cased."""
    return code.translate(_IGNORED).lower()


def looks_like_totp(code: str) -> bool:
    """Exactly six ASCII digits (str.isdigit would also accept other scripts' digits)."""
    return len(code) == DIGITS and set(code) <= _DIGIT_CHARS


def candidate_steps(now_step: int, last_step: int | None) -> list[int]:
    """The steps a code may belong to now: within the window, after the last accepted."""
    steps = range(now_step - WINDOW, now_step + WINDOW + 1)
    return [step for step in steps if last_step is None or step > last_step]


def matching_step(secret: str, code: str, now_step: int, last_step: int | None) -> int | None:
    """The step whose code `code` is, among the candidates; None when it is none of them.

    Every candidate is compared (no early exit) in constant time. Should two steps share a
    code, the later one is taken: recording it as used refuses more, never less."""
    if not looks_like_totp(code):
        return None
    found = None
    for step in candidate_steps(now_step, last_step):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def otpauth_uri(secret: str, account: str) -> str:
    """The key URI authenticator apps read from the QR code (Google Authenticator's format),
    every parameter spelled out so no app has to guess a default."""
    label = quote(f"{ISSUER}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": ISSUER,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
