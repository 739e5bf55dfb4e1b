"""The audit event of a sign-in that went through, whichever way it completed (a password, or
a password and then a second factor)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.tokens_service import ClientContext
from globeguard.identity.models import User


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
