"""Email verification: a signed-in user asks for a link to their current address; the link's
token, POSTed back, marks the address verified.

The token is bound to the address it was mailed to (a digest of it): once the account's
email changes, links sent to the old address stop working, and the new address starts out
unverified (identity.users.service). Marking it verified is an account change like any
other (the one lifecycle path: a new revision, `user.updated`), plus `user.email_verified`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.email_throttle import EmailThrottle
from globeguard.account.links import (
    VERIFY_EMAIL_PAGE,
    InvalidToken,
    email_binding,
    page,
    still_bound,
)
from globeguard.account.notices import duration_words
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.models import User
from globeguard.identity.users.repository import UserRepository
from globeguard.identity.users.service import UserService
from globeguard.kit.errors import Conflict
from globeguard.mail.outbox import MailOutbox
from globeguard.settings import AccountSettings

TEMPLATE = "verify_email"
KIND = "verify"


@dataclass(frozen=True, slots=True)
class Verified:
    user: User
    # False when the address was verified already (nothing was changed).
    changed: bool


class EmailVerificationService:
    def __init__(
        self,
        mail: MailOutbox,
        tokens: OneTimeTokens,
        users: UserService,
        throttle: EmailThrottle,
        settings: AccountSettings,
    ) -> None:
        self.mail = mail
        self.tokens = tokens
        self.users = users
        self.throttle = throttle
        self.settings = settings

    async def send(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        """Mail a verification link to the user's current address; returns the address.
        409 `no_email` / `email_already_verified`; 429 past the account's hourly emails."""
        user = await self.users.get(session, user_id, include_deleted=False)
        if not user.email or not user.email_key:
            raise Conflict("the account has no email address to verify", code="no_email")
        if user.email_verified:
            raise Conflict("the email address is verified already", code="email_already_verified")
        await self.throttle.account_or_429(KIND, user.id)
        ttl = self.settings.verify_email_ttl
        token = await self.tokens.issue(
            session, Purpose.VERIFY_EMAIL, user.id, ttl, email_binding(user.email_key)
        )
        await self.mail.send(
            session,
            to=user.email,
            template=TEMPLATE,
            values={
                "username": user.username,
                "email": user.email,
                "link": self.mail.link(page(VERIFY_EMAIL_PAGE, token=token)),
                "valid_for": duration_words(ttl),
            },
        )
        return user.email

    async def verify(self, session: AsyncSession, token: str) -> Verified:
        """Use the token up and mark the address it was mailed to verified. 400
        `invalid_token` when it is not live, or the account no longer has that address (or
        is no longer active): the token is used up either way."""
        redeemed = await self.tokens.redeem(session, Purpose.VERIFY_EMAIL, token)
        if redeemed is None:
            raise InvalidToken()
        user = await UserRepository(session).get_for_update(redeemed.user_id)
        if (
            user is None
            or user.status != "active"
            or not still_bound(redeemed.data, user.email_key)
        ):
            raise InvalidToken(keep_changes=True)
        if user.email_verified:
            return Verified(user, changed=False)
        actor = f"user:{user.id}"
        await self.users.update(session, user, {"email_verified": True}, actor)
        await record(
            session,
            EventType.EMAIL_VERIFIED,
            actor=actor,
            aggregate_type="user",
            aggregate_id=str(user.id),
            user_id=user.id,
            aggregate_version=user.revision,
            payload={"user_id": str(user.id)},
        )
        return Verified(user, changed=True)
