"""Secrets: random tokens, their digests, constant-time checks, and sealing data at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def random_token(nbytes: int = 32) -> str:
    """URL-safe text carrying `nbytes` of randomness (32 bytes = 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Digest for high-entropy secrets (tokens, keys). Passwords never come through here."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(presented: str, stored_hex: str) -> bool:
    return hmac.compare_digest(sha256_hex(presented), stored_hex)


class Sealer:
    """AES-256-GCM with a key derived from the master secret; output is base64 text.

    `purpose` is bound as associated data, so a value sealed for one use cannot be replayed
    as another.
    """

    def __init__(self, master_secret: bytes) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"globeguard-seal-v1").derive(
            master_secret
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, purpose: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, purpose: str) -> bytes:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
