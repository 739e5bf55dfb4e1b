"""Standard Webhooks signing (the producer side): secrets, key pairs and the header value.

`v1` is HMAC-SHA256 under a `whsec_` secret (24-64 random bytes; we make 32). `v1a` is
ed25519 under a `whsk_` private key (its 32-byte seed); receivers verify with the `whpk_`
public key. One signature per active key goes into one header, so a receiver holding either
the old or the new secret keeps verifying while a secret rotates. Receivers use
`globeguard.webhooks.verify`, which shares `signed_content` with this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from globeguard.webhooks.verify import (
    HMAC_PREFIX,
    PUBLIC_KEY_PREFIX,
    SECRET_KEY_PREFIX,
    decode_key,
    signed_content,
)

HMAC_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class SigningKey:
    """`whsec_…` (v1) or `whsk_…` (v1a), in the clear: only ever held in memory."""

    value: str

    @property
    def scheme(self) -> str:
        return "v1a" if self.value.startswith(SECRET_KEY_PREFIX) else "v1"


def new_hmac_secret() -> str:
    return HMAC_PREFIX + base64.b64encode(os.urandom(HMAC_SECRET_BYTES)).decode()


def new_ed25519_key() -> str:
    return SECRET_KEY_PREFIX + base64.b64encode(os.urandom(32)).decode()


def public_key(secret_key: str) -> str:
    """The `whpk_` key receivers verify `v1a` signatures with."""
    private = Ed25519PrivateKey.from_private_bytes(decode_key(secret_key, SECRET_KEY_PREFIX))
    raw = private.public_key().public_bytes_raw()
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


# Keys are decoded once, not per delivery (a few active keys per subscription). An HMAC is
# kept keyed and copied per message: `hmac.digest` re-derives the key pads on every call and
# hands the GIL to whichever thread wants it around each one (1.9 vs 1.1 us here, and on a
# busy server a wait for the SQLite writer thread to give the GIL back).
@lru_cache(maxsize=4096)
def _hmac_keyed(secret: str) -> hmac.HMAC:
    return hmac.new(decode_key(secret, HMAC_PREFIX), digestmod=hashlib.sha256)


@lru_cache(maxsize=4096)
def _ed25519_key(secret_key: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(decode_key(secret_key, SECRET_KEY_PREFIX))


def _hmac_signature(secret: str, content: bytes) -> str:
    """Equals `globeguard.webhooks.verify.hmac_signature`, with the key decoded once."""
    mac = _hmac_keyed(secret).copy()
    mac.update(content)
    return base64.b64encode(mac.digest()).decode()


def _ed25519_signature(secret_key: str, content: bytes) -> str:
    return base64.b64encode(_ed25519_key(secret_key).sign(content)).decode()


def signature_header(msg_id: str, timestamp: int, body: bytes, keys: Iterable[SigningKey]) -> str:
    """The `webhook-signature` value: `v1,<b64> v1a,<b64> …`, one entry per key."""
    content = signed_content(msg_id, timestamp, body)
    entries = []
    for key in keys:
        if key.scheme == "v1a":
            entries.append(f"v1a,{_ed25519_signature(key.value, content)}")
        else:
            entries.append(f"v1,{_hmac_signature(key.value, content)}")
    return " ".join(entries)


def webhook_headers(
    msg_id: str, timestamp: int, body: bytes, keys: Iterable[SigningKey]
) -> dict[str, str]:
    """The three Standard Webhooks headers. `msg_id` is the event id, the same on every retry
    and redrive; the timestamp and signature are those of this attempt."""
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "content-type": "application/json",
    }
    signature = signature_header(msg_id, timestamp, body, keys)
    if signature:
        headers["webhook-signature"] = signature
    return headers
