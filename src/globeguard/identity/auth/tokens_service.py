"""Minting sessions, access tokens and rotating refresh tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.repository import SessionRepository
from globeguard.identity.grants import grants_of
from globeguard.identity.models import AuthSession, MachineClient, RefreshToken, User
from globeguard.identity.revocation import announce
from globeguard.identity.tokens import KeyRing
from globeguard.identity.users.repository import UserRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import random_token, sha256_hex
from globeguard.kit.errors import AppError
from globeguard.settings import AuthSettings

REFRESH_PREFIX = "ggr_"
# The `client_id` (RFC 9068 §2.2) of tokens a person gets by signing in: the sign-in routes,
# the `password` and `refresh_token` grants, the dashboard and Swagger UI all act as this one
# first-party client. Machine clients' ids start with `ggc_`, so the two never collide.
FIRST_PARTY_CLIENT_ID = "globeguard"


class OAuthError(AppError):
    """RFC 6749 §5.2 errors. At the token and introspection endpoints they are sent as the
    plain `{"error", "error_description"}` JSON OAuth clients read (auth/oauth_errors.py)."""

    status, code, title = 400, "invalid_grant", "Invalid grant"

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        keep_changes: bool = False,
        **extra: Any,
    ):
        # `extra`: members an error adds to the body (`mfa_required` carries its mfa_token).
        super().__init__(
            description,
            code=error,
            keep_changes=keep_changes,
            error=error,
            error_description=description,
            **extra,
        )
        self.status = status
        if status == 401:
            self.headers["WWW-Authenticate"] = 'Basic realm="globeguard"'


@dataclass(frozen=True, slots=True)
class ClientContext:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    session_id: uuid.UUID | None = None
    token_type: str = "Bearer"  # noqa: S105 - the OAuth2 token type


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session about to be stored: its row (SESSION_COLUMNS), its first refresh token's
    row (REFRESH_COLUMNS) and that token's secret."""

    session_row: dict[str, Any]
    refresh_row: dict[str, Any]
    refresh: str


class TokenIssuer:
    def __init__(self, ring: KeyRing, settings: AuthSettings) -> None:
        self.ring = ring
        self.settings = settings

    def access_token_for_user(
        self, user: User, roles: list[str], scopes: list[str], session_id: uuid.UUID
    ) -> tuple[str, int]:
        claims: dict[str, Any] = {
            "sub": str(user.id),
            "client_id": FIRST_PARTY_CLIENT_ID,
            "sid": str(session_id),
            "scope": " ".join(scopes),
            "ver": user.token_version,
            "gty": "password",
            "preferred_username": user.username,
        }
        if roles:  # RFC 9068 §2.2.3.1 validators refuse an empty list: absent means none
            claims["roles"] = roles
        token, _ = self.ring.sign(claims, self.settings.access_token_ttl)
        return token, int(self.settings.access_token_ttl.total_seconds())

    def access_token_for_client(self, client: MachineClient, scopes: list[str]) -> tuple[str, int]:
        claims = {
            "sub": client.client_id,
            "client_id": client.client_id,
            "scope": " ".join(scopes),
            "ver": client.token_version,
            "gty": "client_credentials",
        }
        token, _ = self.ring.sign(claims, self.settings.access_token_ttl)
        return token, int(self.settings.access_token_ttl.total_seconds())

    async def start_session(
        self,
        session: AsyncSession,
        user: User,
        roles: list[str],
        scopes: list[str],
        ctx: ClientContext,
    ) -> IssuedTokens:
        opening = self.new_session(user.id, scopes, ctx)
        await SessionRepository(session).open(opening.session_row, opening.refresh_row)
        return self.session_tokens(user, roles, scopes, opening)

    def new_session(self, user_id: uuid.UUID, scopes: list[str], ctx: ClientContext) -> NewSession:
        """The rows of a session and its first refresh token, not stored yet."""
        now = utcnow()
        session_id = uuid.uuid4()
        refresh, refresh_row = self._refresh_row(session_id, parent_id=None, now=now)
        session_row = {
            "id": session_id,
            "user_id": user_id,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + self.settings.refresh_token_ttl,
            "ip": ctx.ip,
            "user_agent": (ctx.user_agent or "")[:512] or None,
            "scope": " ".join(scopes),
        }
        return NewSession(session_row, refresh_row, refresh)

    def session_tokens(
        self, user: User, roles: list[str], scopes: list[str], opening: NewSession
    ) -> IssuedTokens:
        """The tokens of a session once `opening` is stored."""
        session_id = opening.session_row["id"]
        access, expires_in = self.access_token_for_user(user, roles, scopes, session_id)
        return IssuedTokens(access, expires_in, " ".join(scopes), opening.refresh, session_id)

    def _refresh_row(
        self, session_id: uuid.UUID, parent_id: uuid.UUID | None, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        """A new refresh token: its secret, and the row that stores only its digest."""
        secret = REFRESH_PREFIX + random_token(32)
        row = {
            "id": uuid.uuid4(),
            "session_id": session_id,
            "parent_id": parent_id,
            "token_hash": sha256_hex(secret),
            "issued_at": now,
            "expires_at": now + self.settings.refresh_idle_ttl,
        }
        return secret, row

    async def _new_refresh(
        self,
        repo: SessionRepository,
        session_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        now: datetime,
    ) -> str:
        secret, row = self._refresh_row(session_id, parent_id, now)
        await repo.insert_refresh(**row)
        return secret

    async def live_refresh(self, session: AsyncSession, presented: str) -> AuthSession | None:
        """The session of a refresh token that would rotate now (known, unused, alive), read
        without using it; None otherwise (`rotate` then says why)."""
        found = await SessionRepository(session).refresh_by_hash(sha256_hex(presented.strip()))
        if found is None:
            return None
        token, auth_session = found
        now = utcnow()
        alive = (
            auth_session.revoked_at is None and min(auth_session.expires_at, token.expires_at) > now
        )
        return auth_session if alive and token.used_at is None else None

    async def rotate(self, session: AsyncSession, presented: str) -> IssuedTokens:
        return await self.rotate_digest(session, sha256_hex(presented.strip()))

    async def rotate_digest(self, session: AsyncSession, token_hash: str) -> IssuedTokens:
        """`rotate` for the refresh token of this SHA-256 (a refresh held for a step-up keeps
        only the digest of the token it rotates once passed)."""
        repo = SessionRepository(session)
        found = await repo.refresh_by_hash(token_hash)
        if found is None:
            raise OAuthError("invalid_grant", "unknown refresh token")
        token, auth_session = found
        now = utcnow()
        self._check_alive(token, auth_session, now)
        if token.used_at is not None or not await repo.claim_refresh(token.id, now):
            await self._reuse(session, repo, token, auth_session, now)
        user = await UserRepository(session).get(auth_session.user_id)
        if user is None or user.status != "active":
            raise OAuthError("invalid_grant", "account is not active")
        if user.password_reset_required:
            raise OAuthError("invalid_grant", "a password reset is required")
        grants = await grants_of(session, user.id)
        # A refreshed token never gains scopes the session did not have, and loses any the
        # user no longer holds.
        scopes = [s for s in auth_session.scope.split() if s in grants.scopes]
        roles = grants.roles
        await repo.touch(auth_session.id, now)
        refresh = await self._new_refresh(repo, auth_session.id, parent_id=token.id, now=now)
        access, expires_in = self.access_token_for_user(user, roles, scopes, auth_session.id)
        return IssuedTokens(access, expires_in, " ".join(scopes), refresh, auth_session.id)

    @staticmethod
    def _check_alive(token: RefreshToken, auth_session: AuthSession, now: datetime) -> None:
        if auth_session.revoked_at is not None:
            raise OAuthError("invalid_grant", "session has ended")
        if auth_session.expires_at <= now or token.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh token expired")

    async def _reuse(
        self,
        session: AsyncSession,
        repo: SessionRepository,
        token: RefreshToken,
        auth_session: AuthSession,
        now: datetime,
    ) -> None:
        """A used token again: fine once more within the grace window if nothing after it was
        used (two tabs racing); otherwise someone holds a stolen copy, so end the family."""
        used_at = token.used_at or now
        in_grace = now - used_at <= self.settings.refresh_reuse_grace
        if in_grace and not await repo.has_used_child(token.id):
            return
        await repo.revoke(auth_session.id, now, "refresh_reuse")
        await announce(session, f"session:{auth_session.id}")
        await record(
            session,
            EventType.REFRESH_REUSE_DETECTED,
            actor=f"user:{auth_session.user_id}",
            aggregate_type="user",
            aggregate_id=str(auth_session.user_id),
            user_id=auth_session.user_id,
            payload={"session_id": str(auth_session.id)},
        )
        raise OAuthError(
            "invalid_grant",
            "refresh token reuse detected; the session has been ended",
            keep_changes=True,
        )
