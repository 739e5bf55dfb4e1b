"""Verify a Standard Webhooks (v1.0.0) request, as a receiver of Globeguard's webhooks.

    from globeguard.webhooks.verify import verify, WebhookVerificationError

    try:
        verify(raw_body, request.headers, ["whsec_..."])     # or a "whpk_..." public key
    except WebhookVerificationError:
        return 400
    # then dedupe on request.headers["webhook-id"]: retries and redrives keep it.

The signed content is `"{webhook-id}.{webhook-timestamp}.{raw body}"`. `v1` signatures are
HMAC-SHA256 with a `whsec_` secret, `v1a` are ed25519 with a `whpk_` public key. The header may
carry several space-separated signatures (one per active secret while a secret rotates); one
valid signature is enough. Only the standard library is needed for `v1`; `v1a` needs
`cryptography`. Pass the body exactly as received: re-serialising JSON changes the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

HMAC_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"
SECRET_KEY_PREFIX = "whsk_"  # noqa: S105 - a prefix, not a secret
# The spec tells receivers to accept this much clock skew either way, to stop replays of old
# requests while tolerating servers whose clocks drift.
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh webhook from the holder of the secret."""


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """The bytes both schemes sign. Integer epoch seconds: formatting a datetime instead is
    how one published library signs the wrong instant for non-UTC datetimes."""
    if "." in msg_id:
        raise ValueError("a webhook id must not contain '.'")
    return f"{msg_id}.{int(timestamp)}.".encode() + body


def decode_key(value: str, prefix: str) -> bytes:
    raw = value.removeprefix(prefix) if value.startswith(prefix) else value
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 {prefix} key") from exc


def hmac_signature(secret: str, content: bytes) -> str:
    digest = hmac.new(decode_key(secret, HMAC_PREFIX), content, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    # Frameworks differ in header-name case; HTTP says it does not matter.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing {name} header")


def _timestamp(value: str, now: float, tolerance_s: int) -> int:
    try:
        stamp = int(value)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    if abs(now - stamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp outside the accepted window")
    return stamp


def _entries(header: str) -> list[tuple[str, str]]:
    entries = []
    for item in header.split():
        version, sep, signature = item.partition(",")
        if sep:  # an entry without a comma is skipped, never an exception of another kind
            entries.append((version, signature))
    return entries


def _ed25519_ok(public_key: str, content: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(decode_key(public_key, PUBLIC_KEY_PREFIX))
        key.verify(base64.b64decode(signature, validate=True), content)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _matches(keys: list[str], version: str, content: bytes, signature: str) -> bool:
    for key in keys:
        if version == "v1" and key.startswith(HMAC_PREFIX):
            ok = hmac.compare_digest(hmac_signature(key, content), signature)
        elif version == "v1a" and key.startswith(PUBLIC_KEY_PREFIX):
            ok = _ed25519_ok(key, content, signature)
        else:
            ok = False
        if ok:
            return True
    return False


def verify(
    body: bytes,
    headers: Mapping[str, str],
    keys: Iterable[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> str:
    """Check the request; returns its `webhook-id`, the key to deduplicate on. Raises
    WebhookVerificationError when no signature matches any of `keys` (`whsec_` secrets or
    `whpk_` public keys) or the timestamp is more than `tolerance_s` away from `now`."""
    key_list = list(keys)
    if not key_list:
        raise ValueError("no keys to verify with")
    msg_id = _header(headers, "webhook-id")
    stamp = _timestamp(
        _header(headers, "webhook-timestamp"), time.time() if now is None else now, tolerance_s
    )
    try:
        content = signed_content(msg_id, stamp, body)
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from exc
    for version, signature in _entries(_header(headers, "webhook-signature")):
        if _matches(key_list, version, content, signature):
            return msg_id
    raise WebhookVerificationError("no signature matches")
