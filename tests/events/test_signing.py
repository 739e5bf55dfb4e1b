"""Standard Webhooks signing and verification: the published vectors, then properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.events.signing import (
    SigningKey,
    new_ed25519_key,
    new_hmac_secret,
    public_key,
    signature_header,
    webhook_headers,
)
from globeguard.webhooks.verify import WebhookVerificationError, verify

# From the Standard Webhooks reference tests (symmetric) and its ed25519 proposal.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
V1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
ED_SECRET = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
ED_PUBLIC = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
V1A = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="


def _headers(signature: str, stamp: int = STAMP, msg_id: str = MSG_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_hmac_vector_signs_as_published():
    assert signature_header(MSG_ID, STAMP, PAYLOAD, [SigningKey(SECRET)]) == V1


def test_ed25519_vector_signs_as_published_and_derives_the_public_key():
    assert signature_header(MSG_ID, STAMP, PAYLOAD, [SigningKey(ED_SECRET)]) == V1A
    assert public_key(ED_SECRET) == ED_PUBLIC


@pytest.mark.parametrize(("keys", "signature"), [([SECRET], V1), ([ED_PUBLIC], V1A)])
def test_published_vectors_verify(keys, signature):
    assert verify(PAYLOAD, _headers(signature), keys, now=STAMP) == MSG_ID


def test_both_signatures_in_one_header_verify_with_either_key():
    both = signature_header(MSG_ID, STAMP, PAYLOAD, [SigningKey(SECRET), SigningKey(ED_SECRET)])
    assert both == f"{V1} {V1A}"
    for key in (SECRET, ED_PUBLIC):
        verify(PAYLOAD, _headers(both), [key], now=STAMP)


@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (b'{"test": 2432232315}', _headers(V1), "body changed"),
        (PAYLOAD, _headers(V1, msg_id="msg_other"), "id changed"),
        (PAYLOAD, _headers(V1, stamp=STAMP + 1), "timestamp changed"),
        (PAYLOAD, _headers("v1,AAAA"), "wrong signature"),
        (PAYLOAD, _headers(V1.replace("v1,", "v2,")), "unknown version"),
        (PAYLOAD, _headers("nocomma"), "entry without a comma"),
        (PAYLOAD, _headers(V1A.replace("v1a,", "v1,")), "ed25519 signature labelled v1"),
        (PAYLOAD, {"webhook-id": MSG_ID, "webhook-timestamp": str(STAMP)}, "no signature"),
        (PAYLOAD, _headers(V1, msg_id="a.b"), "dot in the id"),
        (PAYLOAD, {**_headers(V1), "webhook-timestamp": "soon"}, "timestamp not a number"),
    ],
)
def test_forgeries_and_malformed_requests_are_rejected(body, headers, why):
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, [SECRET, ED_PUBLIC], now=STAMP)


@pytest.mark.parametrize(
    ("skew", "accepted"), [(300, True), (-300, True), (301, False), (-301, False)]
)
def test_five_minutes_of_skew_either_way_and_not_a_second_more(skew, accepted):
    headers = _headers(V1)
    if accepted:
        verify(PAYLOAD, headers, [SECRET], now=STAMP + skew)
    else:
        with pytest.raises(WebhookVerificationError, match="window"):
            verify(PAYLOAD, headers, [SECRET], now=STAMP + skew)


def test_header_names_are_case_insensitive():
    headers = {k.upper(): v for k, v in _headers(V1).items()}
    assert verify(PAYLOAD, headers, [SECRET], now=STAMP) == MSG_ID


def test_generated_keys_have_the_standard_shape():
    secret = new_hmac_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    private = new_ed25519_key()
    assert private.startswith("whsk_")
    assert len(base64.b64decode(public_key(private).removeprefix("whpk_"))) == 32


ids = st.from_regex(r"evt_[0-9A-Z]{1,26}", fullmatch=True)


@given(body=st.binary(max_size=512), msg_id=ids, stamp=st.integers(0, 2**40))
def test_whatever_we_sign_verifies_and_any_bit_flip_does_not(body, msg_id, stamp):
    secret = SECRET
    headers = webhook_headers(msg_id, stamp, body, [SigningKey(secret)])
    assert verify(body, headers, [secret], now=stamp) == msg_id
    tampered = body + b" " if not body else bytes([body[0] ^ 1]) + body[1:]
    with pytest.raises(WebhookVerificationError):
        verify(tampered, headers, [secret], now=stamp)


@given(st.lists(st.booleans(), min_size=1, max_size=4))
def test_during_rotation_any_active_secret_verifies(which):
    secrets = [new_hmac_secret() for _ in which]
    headers = webhook_headers(MSG_ID, STAMP, PAYLOAD, [SigningKey(s) for s in secrets])
    for secret in secrets:
        verify(PAYLOAD, headers, [secret], now=STAMP)
    with pytest.raises(WebhookVerificationError):
        verify(PAYLOAD, headers, [new_hmac_secret()], now=STAMP)
