"""Access tokens: ES256 JWTs signed by the current key of a key ring.

Parsed key objects are kept in memory: PyJWT given a PEM re-parses it on every call, which
costs ~0.2 ms for EC keys. Verified tokens are remembered until they expire, so a client
presenting the same token again costs a dict lookup instead of an ECDSA verify (~0.13 ms).
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from globeguard.kit.clock import utcnow

ALGORITHM = "ES256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "ver"]


class InvalidToken(Exception):
    """The token is not one we issued, or no longer valid. The message is safe to show."""


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    kid: str
    private_key: ec.EllipticCurvePrivateKey | None
    public_key: ec.EllipticCurvePublicKey
    public_jwk: dict[str, Any]


def generate_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    return f"gg-{uuid.uuid4().hex[:16]}", ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("signing keys must be EC P-256")
    return key


def public_jwk(kid: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified access token says."""

    sub: str
    jti: str
    exp: datetime
    scope: frozenset[str]
    version: int
    session_id: str | None
    roles: tuple[str, ...]
    grant: str
    raw: dict[str, Any] = field(repr=False)


@dataclass(slots=True)
class KeyRing:
    issuer: str
    audience: str
    leeway: timedelta
    signing: KeyMaterial | None = None
    verifying: dict[str, KeyMaterial] = field(default_factory=dict)
    _verified: OrderedDict[str, TokenClaims] = field(default_factory=OrderedDict)
    verified_cache_size: int = 20_000

    def replace(self, signing: KeyMaterial | None, verifying: list[KeyMaterial]) -> None:
        self.signing = signing
        self.verifying = {k.kid: k for k in verifying}
        self._verified.clear()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.verifying.values()]}

    def sign(self, claims: dict[str, Any], ttl: timedelta) -> tuple[str, datetime]:
        if self.signing is None or self.signing.private_key is None:
            raise RuntimeError("no current signing key loaded")
        now = utcnow()
        expires = now + ttl
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(
            payload,
            self.signing.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self.signing.kid, "typ": "at+jwt"},
        )
        return token, expires

    def knows(self, token: str) -> bool:
        """False when the token names a kid we have not loaded (maybe rotated elsewhere)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True
        return kid in self.verifying

    def verify(self, token: str) -> TokenClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.exp.timestamp() + self.leeway.total_seconds() > utcnow().timestamp():
                return cached
            del self._verified[token]
        claims = self._decode(token)
        self._remember(token, claims)
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        key = self.verifying.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            raw = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid token") from exc
        return _claims_from(raw)

    def _remember(self, token: str, claims: TokenClaims) -> None:
        self._verified[token] = claims
        if len(self._verified) > self.verified_cache_size:
            self._verified.popitem(last=False)


def _claims_from(raw: dict[str, Any]) -> TokenClaims:
    try:
        return TokenClaims(
            sub=str(raw["sub"]),
            jti=str(raw["jti"]),
            exp=datetime.fromtimestamp(int(raw["exp"]), tz=utcnow().tzinfo),
            scope=frozenset(str(raw.get("scope", "")).split()),
            version=int(raw["ver"]),
            session_id=raw.get("sid"),
            roles=tuple(raw.get("roles") or ()),
            grant=str(raw.get("gty", "password")),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("invalid token claims") from exc
