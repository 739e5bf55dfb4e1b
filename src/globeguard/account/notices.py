"""Emails that tell a user what happened to their account: "was this you?" after a risky
sign-in (with the two answers as single-use links) and "your password was changed".

A notice goes only to a verified address: an unverified one may be someone else's, and a
"was this you?" link there would hand a stranger the power to lock the account. Each is
queued in the caller's transaction (the mail outbox), so it leaves only if the change it
tells about is committed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.links import FORGOT_PASSWORD_PAGE, LOGIN_FEEDBACK_PAGE, email_binding, page
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.adapters.geoip.port import GeoLocator, GeoResult
from globeguard.identity.models import User
from globeguard.identity.users.repository import UserRepository
from globeguard.kit.clock import as_utc, utcnow
from globeguard.mail.outbox import MailOutbox
from globeguard.settings import AccountSettings
from globeguard.travel.models import LoginEvent

SIGNIN_NOTICE = "signin_notice"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a template name
UNKNOWN_PLACE = "an unknown place"
UNKNOWN_DEVICE = "an unknown device"


def utc_iso(value: Any) -> str:
    return as_utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


def place_of(event: LoginEvent, geo: GeoResult | None) -> str:
    """'City, Region, Country' in words: the GeoIP database's names for the login's address,
    else what the login stored (a city name, ISO codes)."""
    parts = (
        [geo.city_name, geo.subdivision_name, geo.country_name]
        if geo is not None and (geo.country_name or geo.city_name)
        else [event.city_name, event.subdivision_name or event.subdivision_iso, event.country_iso]
    )
    named = [p for p in dict.fromkeys(parts) if p]
    return ", ".join(named) or UNKNOWN_PLACE


def duration_words(ttl: timedelta) -> str:
    hours = int(ttl.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hour{'s' if hours > 1 else ''}"
    minutes = max(1, int(ttl.total_seconds() // 60))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


class NoticeService:
    def __init__(
        self,
        mail: MailOutbox,
        tokens: OneTimeTokens,
        locator: GeoLocator,
        settings: AccountSettings,
    ) -> None:
        self.mail = mail
        self.tokens = tokens
        self.locator = locator
        self.settings = settings

    async def _recipient(self, session: AsyncSession, user_id: uuid.UUID) -> User | None:
        user = await UserRepository(session).get(user_id)
        if user is None or user.status != "active":
            return None
        if not user.email or not user.email_key or not user.email_verified:
            return None
        return user

    async def signin_notice(
        self, session: AsyncSession, user_id: uuid.UUID, login_event: LoginEvent
    ) -> bool:
        """Queue "was this you?" about `login_event` (a login of `user_id`, in this session):
        where (city, region, country), when (UTC), which device (user agent), and two links,
        "yes, this was me" and "no, secure my account", carrying one single-use token bound
        to that login (whichever answer comes first ends both). False when the account has
        no verified email to tell (or is not active), or the login is someone else's."""
        if login_event.user_id is not None and login_event.user_id != user_id:
            return False
        user = await self._recipient(session, user_id)
        if user is None:
            return False
        if login_event.id is None:
            await session.flush()  # the login's id is what the token is bound to
        ttl = self.settings.login_feedback_ttl
        data = {"login_id": login_event.id, "event_uuid": login_event.event_uuid}
        assert user.email_key is not None
        token = await self.tokens.issue(
            session, Purpose.LOGIN_FEEDBACK, user_id, ttl, data | email_binding(user.email_key)
        )
        geo = self.locator.locate(login_event.ip) if login_event.ip else None
        link = self.mail.link
        await self.mail.send(
            session,
            to=user.email,  # type: ignore[arg-type]
            template=SIGNIN_NOTICE,
            values={
                "username": user.username,
                "place": place_of(login_event, geo),
                "time": utc_iso(login_event.occurred_at),
                "device": login_event.user_agent or UNKNOWN_DEVICE,
                "ip": login_event.ip or "unknown",
                "yes_link": link(page(LOGIN_FEEDBACK_PAGE, token=token, answer="yes")),
                "no_link": link(page(LOGIN_FEEDBACK_PAGE, token=token, answer="no")),
                "valid_for": duration_words(ttl),
            },
        )
        return True

    async def password_changed(self, session: AsyncSession, user_id: uuid.UUID) -> bool:
        """Queue "your password was changed" (a self-service change or a reset). False when
        the account has no verified email to tell."""
        user = await self._recipient(session, user_id)
        if user is None:
            return False
        await self.mail.send(
            session,
            to=user.email,  # type: ignore[arg-type]
            template=PASSWORD_CHANGED,
            values={
                "username": user.username,
                "time": utc_iso(utcnow()),
                "forgot_link": self.mail.link(FORGOT_PASSWORD_PAGE),
            },
        )
        return True
