"""Ending sessions: one (logout), by its refresh token, or every session of an account
(logout-all, also from an admin). The access tokens they issued fail at once (revocation
announcements), and each ending is in the audit trail."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.repository import SessionRepository
from globeguard.identity.revocation import announce
from globeguard.identity.users.repository import CredentialRepository, UserRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import sha256_hex


class LogoutService:
    async def logout(
        self, session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> bool:
        ended = await SessionRepository(session).revoke(session_id, utcnow(), "logout")
        if ended:
            await announce(session, f"session:{session_id}")
            await record(
                session,
                EventType.LOGOUT,
                actor=f"user:{user_id}",
                aggregate_type="user",
                aggregate_id=str(user_id),
                user_id=user_id,
                payload={"user_id": str(user_id), "session_id": str(session_id)},
            )
        return ended

    async def by_refresh(self, session: AsyncSession, refresh_token: str) -> bool:
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
        await record(
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
