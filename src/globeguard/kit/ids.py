"""Identifiers: random UUIDs for rows, time-ordered ids for events."""

from __future__ import annotations

import os
import time
import uuid

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def ulid() -> str:
    """A 26-character ULID: 48-bit millisecond time + 80 random bits, sortable as text."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def event_id() -> str:
    return f"evt_{ulid()}"
