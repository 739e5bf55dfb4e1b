"""The audit events of a sign-in: one that went through, whichever way it completed (a
password, or a password and then a second factor: step-up records it too), one that failed
(`user.signin.failed`) and one whose journey looked suspicious or impossible
(`user.signin.suspicious`). Apart from the sign-in service so that its flow reads as
decisions, not payload building."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.tokens_service import ClientContext
from globeguard.identity.models import User
from globeguard.travel.detect import Grade
from globeguard.travel.service import Recorded


async def record_signin_succeeded(
    session: AsyncSession,
    user: User,
    ctx: ClientContext,
    *,
    login_event: str | None,
    travel: str,
    hash_upgraded: bool = False,
    mfa: str | None = None,
) -> None:
    """`user.signin.succeeded`; `mfa` names the second factor that completed it, if any."""
    payload = {
        "user_id": str(user.id),
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "hash_upgraded": hash_upgraded,
        "login_event": login_event,
        "travel": travel,
    }
    if mfa is not None:
        payload["mfa"] = mfa
    await record(
        session,
        EventType.SIGNIN_SUCCEEDED,
        actor=f"user:{user.id}",
        aggregate_type="user",
        aggregate_id=str(user.id),
        user_id=user.id,
        payload=payload,
    )


async def record_signin_suspicious(
    session: AsyncSession, user_id: uuid.UUID, login: Recorded
) -> None:
    """A suspicious or impossible journey is announced with its reasons."""
    if login.grade not in (Grade.SUSPICIOUS, Grade.IMPOSSIBLE):
        return
    await record(
        session,
        EventType.SIGNIN_SUSPICIOUS,
        actor=f"user:{user_id}",
        aggregate_type="user",
        aggregate_id=str(user_id),
        user_id=user_id,
        payload={
            "user_id": str(user_id),
            "grade": login.grade.value,
            "journey": login.journey,
            "login_event": login.event_uuid,
            "refused": login.refused is not None,
        },
    )


async def record_signin_failed(
    session: AsyncSession,
    user_id: uuid.UUID | None,
    identifier: str,
    ctx: ClientContext,
    reason: str,
) -> None:
    """A refused attempt, whatever refused it; `identifier` is what was typed, so it is cut
    to the longest a username or email can be."""
    await record(
        session,
        EventType.SIGNIN_FAILED,
        actor=f"user:{user_id}" if user_id else "anonymous",
        aggregate_type="user",
        aggregate_id=str(user_id) if user_id else None,
        user_id=user_id,
        payload={
            "identifier": identifier[:320],
            "reason": reason,
            "ip": ctx.ip,
            "user_agent": ctx.user_agent,
        },
    )
