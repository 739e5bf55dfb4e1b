"""Who is calling: a Bearer access token or an `X-API-KEY`, resolved to a Principal."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.identity.api_keys.service import ApiKeyAuthenticator
from globeguard.identity.clients.repository import ClientRepository
from globeguard.identity.keys import SigningKeyService
from globeguard.identity.revocation import RevocationCache, SubjectState
from globeguard.identity.tokens import InvalidToken, KeyRing, TokenClaims
from globeguard.identity.users.repository import UserRepository
from globeguard.kit.errors import Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "user" or "client"
    subject: str
    scopes: frozenset[str]
    roles: tuple[str, ...] = ()
    session_id: uuid.UUID | None = None
    api_key_id: str | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.subject) if self.kind == "user" else None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.subject}"

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this credential lacks the '{scope}' permission", code="forbidden")


# A token naming an unknown kid makes us re-read the keys (a rotation in another process),
# but at most this often, so garbage kids cannot turn into a query per request.
KEY_RELOAD_MIN_INTERVAL_S = 1.0


class Authenticator:
    """Resolves credentials without the request's transaction: the hot path is served from
    caches, and a miss uses a short read of its own, so a request that only reads through
    caches never touches the database."""

    def __init__(
        self,
        db: Database,
        ring: KeyRing,
        cache: RevocationCache,
        api_keys: ApiKeyAuthenticator,
        signing_keys: SigningKeyService,
    ):
        self.db = db
        self.ring = ring
        self.cache = cache
        self.api_keys = api_keys
        self.signing_keys = signing_keys
        self._last_reload = 0.0

    async def from_bearer(self, token: str) -> Principal:
        try:
            claims = await self._verify(token)
        except InvalidToken as exc:
            raise Unauthorized(str(exc), code="invalid_token") from exc
        state = await self._state(claims)
        if state is None or not state.active or state.session_revoked:
            raise Unauthorized("token has been revoked", code="invalid_token")
        if state.token_version != claims.version:
            raise Unauthorized("token has been revoked", code="invalid_token")
        kind = "client" if claims.grant == "client_credentials" else "user"
        return Principal(
            kind=kind,
            subject=claims.sub,
            scopes=claims.scope,
            roles=claims.roles,
            session_id=uuid.UUID(claims.session_id) if claims.session_id else None,
        )

    async def _verify(self, token: str) -> TokenClaims:
        try:
            return self.ring.verify(token)
        except InvalidToken:
            if self.ring.knows(token) or not await self._reload_keys():
                raise
        return self.ring.verify(token)

    async def _reload_keys(self) -> bool:
        if time.monotonic() - self._last_reload < KEY_RELOAD_MIN_INTERVAL_S:
            return False
        self._last_reload = time.monotonic()
        async with self.db.read() as session:
            await self.signing_keys.load(session, self.ring)
        return True

    async def from_api_key(self, presented: str) -> Principal:
        key = await self.api_keys.authenticate(self.db, presented)
        return Principal(
            kind="user",
            subject=str(key.user_id),
            scopes=key.scopes,
            roles=key.roles,
            api_key_id=key.key_id,
        )

    async def _state(self, claims: TokenClaims) -> SubjectState | None:
        return await self.cache.get_or_load(
            claims.sub, claims.session_id, lambda: self._read_state(claims)
        )

    async def _read_state(self, claims: TokenClaims) -> SubjectState | None:
        async with self.db.read() as session:
            return await self._load_state(session, claims)

    async def _load_state(self, session: AsyncSession, claims: TokenClaims) -> SubjectState | None:
        if claims.grant == "client_credentials":
            client = await ClientRepository(session).by_client_id(claims.sub)
            if client is None:
                return None
            return SubjectState(client.token_version, client.revoked_at is None, False)
        try:
            user_id = uuid.UUID(claims.sub)
            sid = uuid.UUID(claims.session_id) if claims.session_id else None
        except ValueError:
            return None
        row = await UserRepository(session).subject_state(user_id, sid)
        if row is None:
            return None
        version, status, session_revoked = row
        return SubjectState(version, status == "active", session_revoked)
