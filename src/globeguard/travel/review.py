"""An admin's word on one login: `safe` (it was the user) or `compromised` (it was not).

- `safe`: the login's place and network count as proven for future grading (the subject's
  profile is rebuilt with the review), and a flagged login is announced `login.cleared`.
- `compromised`: never trusted, whatever recurs from there. When the login is linked to a
  Globeguard user, the account is presumed taken over: every session, refresh token, access
  token and API key ends and its password no longer signs in until it is set again (one
  lifecycle operation, identity.users.lifecycle). `user.compromised` is recorded either way:
  a login reported under another IdP's subject names an account compromised there.

Reviewing again with the same verdict changes nothing. `safe` may become `compromised` (the
stronger word wins); `compromised` never becomes `safe` (409 `login_compromised`): the account
was already cut off and its password reset required because of this login, and undoing that by
trusting the attacker's place would be the wrong way round. An admin who erred clears the
account by setting a new password; the login itself stays disowned.

A user's answer to a "was this you?" email (account.feedback) is the same review, by actor
`user:<id>`: "yes" is `safe`, "no" is `compromised`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.principal import Principal
from globeguard.identity.roles.service import RoleService
from globeguard.identity.users.service import UserService
from globeguard.kit.clock import utcnow
from globeguard.kit.errors import Conflict, NotFound
from globeguard.travel.announce import FLAGGED, announce_review
from globeguard.travel.models import LoginEvent
from globeguard.travel.repository import LoginEventRepository
from globeguard.travel.review_repository import LoginReviewRepository
from globeguard.travel.service import LoginEventService


class Verdict(StrEnum):
    SAFE = "safe"
    COMPROMISED = "compromised"


class Step(StrEnum):
    """What a review does to a login, given the review it already has."""

    APPLY = "apply"
    SAME = "same"
    REFUSE = "refuse"


def next_step(current: str | None, verdict: Verdict) -> Step:
    """Pure: a first review applies; the same one again is a no-op; `safe` gives way to
    `compromised`; `compromised` is final."""
    if current == verdict:
        return Step.SAME
    if current == Verdict.COMPROMISED:
        return Step.REFUSE
    return Step.APPLY


@dataclass(frozen=True, slots=True)
class Reviewed:
    event: LoginEvent
    # False when the login already had this review (nothing was done again).
    changed: bool
    # Sessions ended by a `compromised` review of a linked user's login; else None.
    sessions_revoked: int | None = None


class LoginReviewService:
    def __init__(self, logins: LoginEventService, users: UserService, roles: RoleService):
        self.logins = logins
        self.users = users
        self.roles = roles

    async def review(
        self, session: AsyncSession, login_id: int, verdict: Verdict, presenter: Principal
    ) -> Reviewed:
        """Store `verdict` on the login and act on it, in the caller's transaction. The caller
        has checked `users:write`; an admin's login needs a credential acting as admin."""
        event = await self._login(session, login_id)
        if event.user_id is not None:
            await self.roles.ensure_may_change(session, event.user_id, presenter)
        return await self._apply(session, event, verdict, presenter.actor)

    async def answer(
        self, session: AsyncSession, login_id: int, user_id: uuid.UUID, verdict: Verdict
    ) -> Reviewed:
        """The user's own word on one of their logins (an answer to a sign-in notice): the
        same review as an admin's, by actor `user:<id>`. 404 for another user's login."""
        event = await self._login(session, login_id)
        if event.user_id != user_id:
            raise NotFound(f"no login with id {login_id}", code="login_not_found")
        return await self._apply(session, event, verdict, f"user:{user_id}")

    @staticmethod
    async def _login(session: AsyncSession, login_id: int) -> LoginEvent:
        event = await LoginReviewRepository(session).get(login_id)
        if event is None:
            raise NotFound(f"no login with id {login_id}", code="login_not_found")
        return event

    async def _apply(
        self, session: AsyncSession, event: LoginEvent, verdict: Verdict, actor: str
    ) -> Reviewed:
        repo = LoginReviewRepository(session)
        # The lock every writer of the subject's logins takes first (recording, re-grading,
        # rebuilding its profile), taken first here too: two reviews of one login, or a
        # review and a late arrival re-grading it, follow one another.
        await LoginEventRepository(session).lock_subject(event.subject)
        await repo.reread(event)
        step = next_step(event.review, verdict)
        if step is Step.SAME:
            return Reviewed(event, changed=False)
        if step is Step.REFUSE:
            raise Conflict(
                "this login was reviewed 'compromised'; that review is final (set the user's "
                "password to lift the reset it required)",
                code="login_compromised",
                review=event.review,
            )
        previous = event.review
        event.review, event.reviewed_at = verdict.value, utcnow()
        await session.flush()
        await _record_review(session, event, previous, actor)
        # Rebuilt from the events, where this review now proves (or disowns) the place.
        await self.logins.reviewed(session, event)
        if verdict is Verdict.SAFE:
            await self._cleared(session, event, actor)
            return Reviewed(event, changed=True)
        ended = await self._compromised(session, event, previous, actor)
        return Reviewed(event, changed=True, sessions_revoked=ended)

    @staticmethod
    async def _cleared(session: AsyncSession, event: LoginEvent, actor: str) -> None:
        if event.verdict in FLAGGED:
            await announce_review(session, event, "cleared", actor=actor)

    async def _compromised(
        self, session: AsyncSession, event: LoginEvent, previous: str | None, actor: str
    ) -> int | None:
        ended, version = None, None
        if event.user_id is not None:
            user, ended = await self.users.require_password_reset(session, event.user_id, actor)
            version = user.revision
        await record(
            session,
            EventType.USER_COMPROMISED,
            actor=actor,
            aggregate_type="user" if event.user_id is not None else "login",
            aggregate_id=str(event.user_id) if event.user_id is not None else event.event_uuid,
            user_id=event.user_id,
            aggregate_version=version,
            payload=_evidence(event, previous, ended),
        )
        return ended


async def _record_review(
    session: AsyncSession, event: LoginEvent, previous: str | None, actor: str
) -> None:
    """The audit trail's entry for every review that changed something (a `safe` review of a
    login nobody flagged changes trust, and is announced nowhere else)."""
    await record(
        session,
        EventType.LOGIN_REVIEWED,
        actor=actor,
        aggregate_type="login",
        aggregate_id=event.event_uuid,
        user_id=event.user_id,
        payload={
            "login_id": event.id,
            "event_uuid": event.event_uuid,
            "subject": event.subject,
            "user_id": None if event.user_id is None else str(event.user_id),
            "source": event.source,
            "verdict": event.verdict,
            "review": event.review,
            "previous_review": previous,
        },
    )


def _evidence(event: LoginEvent, previous: str | None, ended: int | None) -> dict[str, Any]:
    user_id: uuid.UUID | None = event.user_id
    return {
        "login_id": event.id,
        "event_uuid": event.event_uuid,
        "subject": event.subject,
        "user_id": None if user_id is None else str(user_id),
        "source": event.source,
        "verdict": event.verdict,
        "review": Verdict.COMPROMISED.value,
        "previous_review": previous,
        "sessions_revoked": ended,
        "password_reset_required": user_id is not None,
    }
