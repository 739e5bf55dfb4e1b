"""Sign-up, sign-in, grants, logout. Unknown users and wrong passwords are indistinguishable:
same 401 body, and both pay for one argon2 verify."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.repository import SessionRepository
from globeguard.identity.auth.tokens_service import (
    ClientContext,
    IssuedTokens,
    OAuthError,
    TokenIssuer,
)
from globeguard.identity.clients.repository import ClientRepository
from globeguard.identity.grants import grants_of
from globeguard.identity.models import User
from globeguard.identity.passwords import PasswordHasher
from globeguard.identity.revocation import announce
from globeguard.identity.users.repository import CredentialRepository, UserRepository
from globeguard.identity.users.service import UserService
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import same_digest, sha256_hex
from globeguard.kit.errors import Forbidden, Unauthorized


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("invalid username or password", keep_changes=True)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    roles: list[str]
    tokens: IssuedTokens


@dataclass(frozen=True, slots=True)
class _Candidate:
    user_id: uuid.UUID | None
    password_hash: str | None
    status: str | None


class AuthService:
    def __init__(
        self, db: Database, hasher: PasswordHasher, issuer: TokenIssuer, users: UserService
    ) -> None:
        self.db = db
        self.hasher = hasher
        self.issuer = issuer
        self.users = users

    async def signup(
        self, session: AsyncSession, data: dict[str, Any], ctx: ClientContext
    ) -> SignedIn:
        user = await self.users.create(session, data, actor=None, roles=None)
        return await self._session_for(session, user, None, ctx)

    async def signin(
        self,
        session: AsyncSession,
        identifier: str,
        password: str,
        scope: str | None,
        ctx: ClientContext,
    ) -> SignedIn:
        user = await self.verify_password(session, identifier, password, ctx)
        return await self._session_for(session, user, scope, ctx)

    async def verify_password(
        self, session: AsyncSession, identifier: str, password: str, ctx: ClientContext
    ) -> User:
        candidate = await self._candidate(identifier)
        verdict = await self.hasher.verify(candidate.password_hash, password)
        user = await UserRepository(session).get(candidate.user_id) if candidate.user_id else None
        # Re-read inside the write transaction: the row may have changed during the hash.
        if (
            user is None
            or not verdict.ok
            or user.status == "deleted"
            or user.password_hash != candidate.password_hash
        ):
            self._failed(session, user, identifier, ctx, "invalid_credentials")
            raise InvalidCredentials()
        if user.status == "blocked":
            self._failed(session, user, identifier, ctx, "blocked")
            raise Forbidden("this account is blocked", code="account_blocked", keep_changes=True)
        now = utcnow()
        await UserRepository(session).record_signin(user.id, now, ctx.ip, verdict.upgraded_hash)
        await session.refresh(user)
        record(
            session,
            EventType.SIGNIN_SUCCEEDED,
            actor=f"user:{user.id}",
            aggregate_type="user",
            aggregate_id=str(user.id),
            user_id=user.id,
            payload={
                "user_id": str(user.id),
                "ip": ctx.ip,
                "user_agent": ctx.user_agent,
                "hash_upgraded": verdict.upgraded_hash is not None,
            },
        )
        return user

    async def _candidate(self, identifier: str) -> _Candidate:
        # A short read that releases its connection before the ~17 ms hash.
        async with self.db.read() as read_session:
            user = await UserRepository(read_session).by_identifier(identifier)
            if user is None:
                return _Candidate(None, None, None)
            return _Candidate(user.id, user.password_hash, user.status)

    @staticmethod
    def _failed(
        session: AsyncSession, user: User | None, identifier: str, ctx: ClientContext, reason: str
    ) -> None:
        record(
            session,
            EventType.SIGNIN_FAILED,
            actor=f"user:{user.id}" if user else "anonymous",
            aggregate_type="user",
            aggregate_id=str(user.id) if user else None,
            user_id=user.id if user else None,
            payload={
                "identifier": identifier[:320],
                "reason": reason,
                "ip": ctx.ip,
                "user_agent": ctx.user_agent,
            },
        )

    async def _session_for(
        self, session: AsyncSession, user: User, scope: str | None, ctx: ClientContext
    ) -> SignedIn:
        grants = await grants_of(session, user.id)
        scopes = grants.session_scopes(scope)
        tokens = await self.issuer.start_session(session, user, grants.roles, scopes, ctx)
        return SignedIn(user, grants.roles, tokens)

    async def password_grant(
        self,
        session: AsyncSession,
        username: str,
        password: str,
        scope: str | None,
        ctx: ClientContext,
    ) -> IssuedTokens:
        try:
            return (await self.signin(session, username, password, scope, ctx)).tokens
        except (InvalidCredentials, Forbidden) as exc:
            raise OAuthError("invalid_grant", exc.detail, keep_changes=True) from exc

    async def client_credentials(
        self, session: AsyncSession, client_id: str, secret: str, scope: str | None
    ) -> IssuedTokens:
        client = await ClientRepository(session).by_client_id(client_id)
        if (
            client is None
            or client.revoked_at is not None
            or not same_digest(secret, client.secret_hash)
        ):
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        granted = set(client.scopes)
        wanted = set(scope.split()) if scope else granted
        if not wanted <= granted:
            raise OAuthError("invalid_scope", f"not granted: {' '.join(sorted(wanted - granted))}")
        access, expires_in = self.issuer.access_token_for_client(client, sorted(wanted))
        return IssuedTokens(access, expires_in, " ".join(sorted(wanted)))

    async def logout(
        self, session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> bool:
        ended = await SessionRepository(session).revoke(session_id, utcnow(), "logout")
        if ended:
            await announce(session, f"session:{session_id}")
            record(
                session,
                EventType.LOGOUT,
                actor=f"user:{user_id}",
                aggregate_type="user",
                aggregate_id=str(user_id),
                user_id=user_id,
                payload={"user_id": str(user_id), "session_id": str(session_id)},
            )
        return ended

    async def logout_by_refresh(self, session: AsyncSession, refresh_token: str) -> bool:
        found = await SessionRepository(session).refresh_by_hash(sha256_hex(refresh_token.strip()))
        if found is None:
            return False
        _, auth_session = found
        return await self.logout(session, auth_session.user_id, auth_session.id)

    async def logout_all(
        self, session: AsyncSession, user_id: uuid.UUID, *, include_api_keys: bool, actor: str
    ) -> tuple[int, int]:
        now = utcnow()
        creds = CredentialRepository(session)
        sessions = await creds.revoke_sessions(user_id, now, "logout_all")
        keys = await creds.revoke_api_keys(user_id, now) if include_api_keys else 0
        await UserRepository(session).bump_token_version(user_id)
        await announce(session, str(user_id))
        record(
            session,
            EventType.LOGOUT_ALL,
            actor=actor,
            aggregate_type="user",
            aggregate_id=str(user_id),
            user_id=user_id,
            payload={
                "user_id": str(user_id),
                "sessions_revoked": sessions,
                "api_keys_revoked": keys,
            },
        )
        return sessions, keys
