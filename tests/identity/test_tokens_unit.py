"""KeyRing: signing and verification rules, without a database."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from globeguard.identity.tokens import (
    InvalidToken,
    KeyMaterial,
    KeyRing,
    generate_key,
    public_jwk,
)


def _material(with_private: bool = True) -> KeyMaterial:
    kid, key = generate_key()
    return KeyMaterial(
        kid, key if with_private else None, key.public_key(), public_jwk(kid, key.public_key())
    )


def _ring(signing: KeyMaterial, *others: KeyMaterial) -> KeyRing:
    ring = KeyRing("https://issuer.test", "api", timedelta(seconds=0))
    ring.replace(signing, [signing, *others])
    return ring


CLAIMS = {"sub": "u1", "ver": 3, "scope": "profile users:read", "sid": "s1", "roles": ["admin"]}


def test_round_trip_carries_claims_and_kid():
    signing = _material()
    ring = _ring(signing)
    token, _ = ring.sign(CLAIMS, timedelta(minutes=15))
    claims = ring.verify(token)
    assert (claims.sub, claims.version, claims.session_id) == ("u1", 3, "s1")
    assert claims.scope == frozenset({"profile", "users:read"})
    assert jwt.get_unverified_header(token)["kid"] == signing.kid
    assert claims.raw["exp"] - claims.raw["iat"] == 900


def test_a_retired_key_still_verifies_but_does_not_sign():
    old, new = _material(), _material()
    token, _ = _ring(old).sign(CLAIMS, timedelta(minutes=5))
    ring = _ring(new, KeyMaterial(old.kid, None, old.public_key, old.public_jwk))
    assert ring.verify(token).sub == "u1"
    assert jwt.get_unverified_header(ring.sign(CLAIMS, timedelta(minutes=5))[0])["kid"] == new.kid


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t, r: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "invalid token"),
        (lambda t, r: "not.a.jwt", "malformed token"),
        (
            lambda t, r: jwt.encode(
                {**CLAIMS, "iss": r.issuer, "aud": "api", "exp": 9e9, "iat": 0, "jti": "x"},
                None,
                algorithm="none",
                headers={"kid": r.signing.kid},
            ),
            "invalid token",
        ),
        (
            lambda t, r: jwt.encode(
                {**CLAIMS, "iss": r.issuer, "aud": "api", "exp": 9e9, "iat": 0, "jti": "x"},
                "k" * 32,
                algorithm="HS256",
                headers={"kid": r.signing.kid},
            ),
            "invalid token",
        ),
    ],
    ids=["tampered-signature", "garbage", "alg-none", "hs256-confusion"],
)
def test_forged_tokens_are_rejected(mutate, reason):
    ring = _ring(_material())
    token, _ = ring.sign(CLAIMS, timedelta(minutes=5))
    with pytest.raises(InvalidToken, match=reason):
        ring.verify(mutate(token, ring))


def test_expired_wrong_audience_wrong_issuer_unknown_kid():
    signing = _material()
    ring = _ring(signing)
    expired, _ = ring.sign(CLAIMS, timedelta(seconds=-30))
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(expired)
    other_aud = KeyRing("https://issuer.test", "other", timedelta(0))
    other_aud.replace(signing, [signing])
    other_iss = KeyRing("https://elsewhere.test", "api", timedelta(0))
    other_iss.replace(signing, [signing])
    for foreign in (other_aud, other_iss):
        token, _ = foreign.sign(CLAIMS, timedelta(minutes=5))
        with pytest.raises(InvalidToken):
            ring.verify(token)
    stranger, _ = _ring(_material()).sign(CLAIMS, timedelta(minutes=5))
    with pytest.raises(InvalidToken, match="unknown signing key"):
        ring.verify(stranger)
    assert not ring.knows(stranger)


def test_missing_version_claim_is_rejected():
    ring = _ring(_material())
    token, _ = ring.sign({"sub": "u1"}, timedelta(minutes=5))
    with pytest.raises(InvalidToken):
        ring.verify(token)


def test_cached_verification_still_expires():
    ring = _ring(_material())
    token, _ = ring.sign(CLAIMS, timedelta(seconds=1))
    assert ring.verify(token).sub == "u1"  # now cached
    import time

    time.sleep(1.1)
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(token)


def test_jwks_lists_public_parts_only():
    a, b = _material(), _material()
    keys = _ring(a, b).jwks()["keys"]
    assert {k["kid"] for k in keys} == {a.kid, b.kid}
    assert all(k["alg"] == "ES256" and "d" not in k for k in keys)
