"""Password reset by email.

`forgot` is answered the same whoever it names (202, one body): whether an account exists is
decided after the answer has left (the route queues the work behind the response), so
neither the body nor the time tells. It mails a single-use link, valid 30 minutes
(`GLOBEGUARD_ACCOUNT__PASSWORD_RESET_TTL`), to an active account's address; a newer link
replaces every older one. Past the hourly emails of the address or account nothing is sent,
silently; only a caller address past its own limit is refused (429).

`reset` takes the token and a new password. The password is scored and hashed before the
write transaction (identity.users.service: hashing inside it would hold the writer), and
only a live token costs a hash. The write uses the token up, stores the hash through the
one lifecycle path (every session, refresh family and access token ends; a required reset
is lifted), marks the address verified (the link proved it) and mails "your password was
changed". A token whose account was deleted since, or whose address changed since, is
refused as `invalid_token`; a blocked account's as 403 `account_blocked`: the link is used
up either way, and a new one can be asked for once the account is active again (an admin
unblocks; a blocked account is sent no link).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.email_repository import AccountMailRepository
from globeguard.account.email_throttle import EmailThrottle
from globeguard.account.links import (
    RESET_PASSWORD_PAGE,
    InvalidToken,
    email_binding,
    page,
    still_bound,
)
from globeguard.account.notices import NoticeService, duration_words
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.models import User
from globeguard.identity.users.repository import UserRepository
from globeguard.identity.users.service import UserService
from globeguard.kit.errors import Forbidden
from globeguard.mail.outbox import MailOutbox
from globeguard.settings import AccountSettings

TEMPLATE = "password_reset"
KIND = "reset"


@dataclass(frozen=True, slots=True)
class PreparedReset:
    """A reset checked and hashed outside the write transaction, ready to be stored."""

    token: str
    user_id: uuid.UUID
    new_hash: str


@dataclass(frozen=True, slots=True)
class ResetDone:
    user_id: uuid.UUID
    sessions_revoked: int


class PasswordResetService:
    def __init__(
        self,
        mail: MailOutbox,
        tokens: OneTimeTokens,
        users: UserService,
        throttle: EmailThrottle,
        notices: NoticeService,
        settings: AccountSettings,
    ) -> None:
        self.mail = mail
        self.tokens = tokens
        self.users = users
        self.throttle = throttle
        self.notices = notices
        self.settings = settings

    async def admit(self, ip: str | None) -> None:
        """The caller's address may ask once more this hour, or 429."""
        await self.throttle.caller(KIND, ip)

    async def forgot(
        self, session: AsyncSession, *, email: str | None = None, username: str | None = None
    ) -> bool:
        """Mail a reset link to the account `email` or `username` names, if there is an
        active one with an address and neither the address typed nor the account is past
        its hourly emails. True when a link was queued (never told to the caller)."""
        typed = (email or username or "").strip().lower()
        if not typed or not await self.throttle.address(KIND, typed):
            return False
        repo = AccountMailRepository(session)
        user = await (repo.user_by_email(typed) if email else repo.user_by_username(typed))
        if user is None or user.status != "active" or not user.email_key:
            return False
        if not await self.throttle.account(KIND, user.id):
            return False
        await self.mail_link(session, user, cause="forgot")
        return True

    async def mail_link(self, session: AsyncSession, user: User, *, cause: str) -> None:
        """Queue a reset link for `user` (which has an address); older links stop working."""
        assert user.email is not None and user.email_key is not None
        ttl = self.settings.password_reset_ttl
        token = await self.tokens.issue(
            session,
            Purpose.PASSWORD_RESET,
            user.id,
            ttl,
            email_binding(user.email_key),
            supersede=True,
        )
        await self.mail.send(
            session,
            to=user.email,
            template=TEMPLATE,
            values={
                "username": user.username,
                "link": self.mail.link(page(RESET_PASSWORD_PAGE, token=token)),
                "valid_for": duration_words(ttl),
            },
        )
        await record(
            session,
            EventType.PASSWORD_RESET_REQUESTED,
            actor=f"user:{user.id}",
            aggregate_type="user",
            aggregate_id=str(user.id),
            user_id=user.id,
            payload={"user_id": str(user.id), "cause": cause},
        )

    async def prepare(self, reader: AsyncSession, token: str, password: str) -> PreparedReset:
        """Check the token is live (without using it up) and the password is acceptable,
        then hash it. `reader` is a read session: no write transaction is open meanwhile.
        400 `invalid_token`; 422 `weak_password` (the token stays live)."""
        found = await self.tokens.peek(reader, Purpose.PASSWORD_RESET, token)
        if found is None:
            raise InvalidToken()
        user = await UserRepository(reader).get(found.user_id)
        if user is None:
            raise InvalidToken()
        await self.users.check_password(password, user.username, user.email)
        return PreparedReset(token, user.id, await self.users.hasher.hash(password))

    async def reset(self, session: AsyncSession, prepared: PreparedReset) -> ResetDone:
        """Use the token up and store the new password (see the module's docstring)."""
        redeemed = await self.tokens.redeem(session, Purpose.PASSWORD_RESET, prepared.token)
        if redeemed is None or redeemed.user_id != prepared.user_id:
            raise InvalidToken()
        user = await UserRepository(session).get_for_update(redeemed.user_id)
        if (
            user is None
            or user.status == "deleted"
            or not still_bound(redeemed.data, user.email_key)
        ):
            raise InvalidToken(keep_changes=True)
        if user.status == "blocked":
            raise Forbidden("this account is blocked", code="account_blocked", keep_changes=True)
        was_verified = user.email_verified
        actor = f"user:{user.id}"
        ended = await self.users.reset_password(session, user, prepared.new_hash, actor)
        await self._record(session, user, EventType.PASSWORD_RESET, sessions_revoked=ended)
        if not was_verified:
            await self._record(session, user, EventType.EMAIL_VERIFIED)
        await self.notices.password_changed(session, user.id)
        return ResetDone(user.id, ended)

    @staticmethod
    async def _record(
        session: AsyncSession, user: User, type_: EventType, **payload: object
    ) -> None:
        await record(
            session,
            type_,
            actor=f"user:{user.id}",
            aggregate_type="user",
            aggregate_id=str(user.id),
            user_id=user.id,
            aggregate_version=user.revision,
            payload={"user_id": str(user.id), **payload},
        )
