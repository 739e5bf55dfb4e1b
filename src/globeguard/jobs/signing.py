"""Signed download links: the link itself is the credential, like a pre-signed URL, so a
browser or `curl` can fetch an export without an API key, for a limited time.

The signature is HMAC-SHA256 over the job id and the expiry, keyed by a key derived from the
instance secret for this one purpose, so it proves nothing anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

LINK_PURPOSE = b"globeguard-export-link-v1"


def link_key(master_secret: bytes) -> bytes:
    return hmac.new(master_secret, LINK_PURPOSE, hashlib.sha256).digest()


def sign(key: bytes, job_id: uuid.UUID, expires: int) -> str:
    message = f"{job_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, job_id: uuid.UUID, expires: int, signature: str, now: float) -> bool:
    """True when `signature` was made by `sign` for this job and expiry, and the expiry is
    still ahead. The comparison takes the same time wherever the first difference is."""
    expected = sign(key, job_id, expires)
    # Bytes, not str: compare_digest refuses non-ASCII text, and the signature is client input.
    return hmac.compare_digest(expected.encode(), signature.encode()) and now < expires
