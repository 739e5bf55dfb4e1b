"""The one account-lifecycle operation. Every change of a password, a status, an email or a
user's roles — from the API, an import, an Auth0 sync or the command line — ends here, so it
revokes the same credentials, bumps the same token version, evicts the same caches and
records the same specific events, in the caller's transaction.

Set-based: a batch of changed accounts costs one UPDATE per kind of revocation, one for the
token versions, one multi-row INSERT of events, whatever its size (an import applies up to
1000 accounts at a time). `consequences` is the pure part: what each change revokes and
announces, tested by tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import event_row, record_many
from globeguard.identity.revocation import announce_many
from globeguard.identity.users.repository import CredentialRepository, UserRepository

ACTIVE, BLOCKED, DELETED = "active", "blocked", "deleted"
# Revocation reasons, strongest first: when one change has several, the session records
# the strongest.
DELETED_REASON, BLOCKED_REASON, PASSWORD_REASON = "deleted", "blocked", "password_changed"
COMPROMISED_REASON = "compromised"


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What one write did to one account (already written by the caller)."""

    user_id: uuid.UUID
    # The user's revision after the write, published on its events.
    version: int | None = None
    password: bool = False
    # (before, after) when the status changed.
    status: tuple[str, str] | None = None
    roles: bool = False
    # Other fields the write set (email, names, metadata): one `user.updated` lists them.
    fields: tuple[str, ...] = ()
    # A self-service password change keeps the session it was made from, and with it that
    # session's access token (so no token-version bump either).
    keep_session: uuid.UUID | None = None
    # The account is presumed taken over (a login reviewed `compromised`; the caller set
    # `password_reset_required`): everything a sign-in or a session could have handed out
    # ends. The caller records `user.compromised`, which carries the login as evidence.
    compromised: bool = False


@dataclass(slots=True)
class Consequences:
    """Everything a batch of changes revokes, bumps, announces and records."""

    # reason → users whose every session (refresh family) ends
    end_sessions: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    # sessions that survive their user's revocation (self-service password change)
    keep_sessions: list[uuid.UUID] = field(default_factory=list)
    bump_versions: list[uuid.UUID] = field(default_factory=list)
    revoke_api_keys: list[uuid.UUID] = field(default_factory=list)
    # users whose new password lifts a required reset
    clear_password_reset: list[uuid.UUID] = field(default_factory=list)
    announce: list[uuid.UUID] = field(default_factory=list)
    # (type, user, version, changed fields or None)
    events: list[tuple[EventType, uuid.UUID, int | None, list[str] | None]] = field(
        default_factory=list
    )


def status_events(before: str, after: str) -> list[EventType]:
    """The events a status transition records, in order."""
    if before == after:
        return []
    events = [EventType.USER_RESTORED] if before == DELETED else []
    if after == BLOCKED:
        events.append(EventType.USER_BLOCKED)
    elif after == DELETED:
        events.append(EventType.USER_DELETED)
    elif before == BLOCKED:
        events.append(EventType.USER_UNBLOCKED)
    return events


def revocation_reason(change: AccountChange) -> str | None:
    """Why the account's sessions end, if they do. Deletion and blocking end every session
    (and, for deletion, every API key: a restore must not revive them); a new password ends
    every session but the one it was changed from. Unblocking and restoring revive nothing."""
    after = change.status[1] if change.status and change.status[0] != change.status[1] else None
    if after == DELETED:
        return DELETED_REASON
    if after == BLOCKED:
        return BLOCKED_REASON
    if change.compromised:
        return COMPROMISED_REASON
    if change.password:
        return PASSWORD_REASON
    return None


def consequences(changes: Sequence[AccountChange]) -> Consequences:
    result = Consequences()
    for change in changes:
        reason = revocation_reason(change)
        keeps = reason == PASSWORD_REASON and change.keep_session is not None
        if reason is not None:
            result.end_sessions.setdefault(reason, []).append(change.user_id)
            if keeps:
                result.keep_sessions.append(change.keep_session)  # type: ignore[arg-type]
        # A role change alters what tokens may do; a kept session's token must live on.
        if (reason is not None and not keeps) or change.roles:
            result.bump_versions.append(change.user_id)
        # A deleted account's keys must not come back with a restore; a compromised one's may
        # have been made by whoever took it over.
        if reason == DELETED_REASON or change.compromised:
            result.revoke_api_keys.append(change.user_id)
        # Setting the password again is what a required reset asks for; a compromise in the
        # same change keeps it required.
        if change.password and not change.compromised:
            result.clear_password_reset.append(change.user_id)
        result.announce.append(change.user_id)
        uid, version = change.user_id, change.version
        if change.status is not None:
            result.events += [(t, uid, version, None) for t in status_events(*change.status)]
        if change.password:
            result.events.append((EventType.PASSWORD_CHANGED, uid, version, None))
        if change.fields:
            result.events.append((EventType.USER_UPDATED, uid, version, sorted(change.fields)))
    return result


async def apply(
    session: AsyncSession, changes: Sequence[AccountChange], *, actor: str, now: datetime
) -> int:
    """Revoke, bump, announce and record what `changes` call for, in the caller's
    transaction. Returns how many sessions ended."""
    plan = consequences(changes)
    credentials = CredentialRepository(session)
    ended = 0
    for reason, user_ids in plan.end_sessions.items():
        ended += await credentials.revoke_sessions_of(user_ids, now, reason, plan.keep_sessions)
    if plan.revoke_api_keys:
        await credentials.revoke_api_keys_of(plan.revoke_api_keys, now)
    users = UserRepository(session)
    if plan.bump_versions:
        await users.bump_token_versions(plan.bump_versions)
    if plan.clear_password_reset:
        await users.clear_password_reset(plan.clear_password_reset)
    await announce_many(session, [str(user_id) for user_id in dict.fromkeys(plan.announce)])
    await record_many(session, [_event_row(e, actor, now) for e in plan.events])
    return ended


def _event_row(
    event: tuple[EventType, uuid.UUID, int | None, list[str] | None], actor: str, now: datetime
) -> dict[str, Any]:
    type_, user_id, version, changed = event
    payload: dict[str, Any] = {"user_id": str(user_id)}
    if changed is not None:
        payload["changed"] = changed
    return event_row(
        type_,
        actor=actor,
        aggregate_type="user",
        aggregate_id=str(user_id),
        user_id=user_id,
        payload=payload,
        aggregate_version=version,
        occurred_at=now,
    )
