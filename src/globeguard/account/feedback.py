"""A user's answer to a "was this you?" email (account.notices).

- "yes": the login's place and network count as the user's from now on. It is the review an
  admin gives as `safe` (travel.review: the profile is rebuilt, a flagged login is announced
  `login.cleared`), by actor `user:<id>`; `login.confirmed` records the answer.
- "no": the compromised path, the review an admin gives as `compromised`: every session,
  refresh family, access token and API key ends, the password must be set again
  (`password_reset_required`), `user.compromised` is recorded for admins; `login.disowned`
  records the answer. So that the owner, now signed out everywhere, can get back in, a
  password reset link is mailed to the same (verified) address at once.

One token carries both answers: whichever is used first ends the other. An answer about a
login an admin already reviewed `compromised` can only be "no" ("yes" is 409
`login_compromised`, and the token stays usable for "no").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.links import InvalidToken, still_bound
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.account.reset import PasswordResetService
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.users.repository import UserRepository
from globeguard.kit.errors import NotFound
from globeguard.travel.models import LoginEvent
from globeguard.travel.review import LoginReviewService, Verdict


class Answer(StrEnum):
    YES = "yes"
    NO = "no"


VERDICTS = {Answer.YES: Verdict.SAFE, Answer.NO: Verdict.COMPROMISED}
EVENTS = {Answer.YES: EventType.LOGIN_CONFIRMED, Answer.NO: EventType.LOGIN_DISOWNED}


@dataclass(frozen=True, slots=True)
class Answered:
    answer: Answer
    login: LoginEvent
    # Sessions the "no" ended (None for "yes", or a login already reviewed compromised).
    sessions_revoked: int | None
    # A reset link was mailed ("no").
    reset_link_sent: bool


class LoginFeedbackService:
    def __init__(
        self, tokens: OneTimeTokens, reviews: LoginReviewService, resets: PasswordResetService
    ) -> None:
        self.tokens = tokens
        self.reviews = reviews
        self.resets = resets

    async def answer(self, session: AsyncSession, token: str, answer: Answer) -> Answered:
        """Use the token up and act on the answer. 400 `invalid_token` when the token is not
        live, or the account is gone, no longer active or no longer has the address the
        question was mailed to (the token is used up then too)."""
        redeemed = await self.tokens.redeem(session, Purpose.LOGIN_FEEDBACK, token)
        if redeemed is None:
            raise InvalidToken()
        user = await UserRepository(session).get(redeemed.user_id)
        login_id = redeemed.data.get("login_id")
        if (
            user is None
            or user.status != "active"
            or not isinstance(login_id, int)
            or not still_bound(redeemed.data, user.email_key)
        ):
            raise InvalidToken(keep_changes=True)
        try:
            done = await self.reviews.answer(session, login_id, user.id, VERDICTS[answer])
        except NotFound:  # the login was erased since (retention)
            raise InvalidToken(keep_changes=True) from None
        actor = f"user:{user.id}"
        event = done.event
        await record(
            session,
            EVENTS[answer],
            actor=actor,
            aggregate_type="login",
            aggregate_id=event.event_uuid,
            user_id=user.id,
            payload={
                "login_id": event.id,
                "event_uuid": event.event_uuid,
                "user_id": str(user.id),
                "answer": answer.value,
                "verdict": event.verdict,
                "review": event.review,
            },
        )
        sent = False
        if answer is Answer.NO and user.email_key:
            await self.resets.mail_link(session, user, cause="login_disowned")
            sent = True
        return Answered(answer, event, done.sessions_revoked, sent)
