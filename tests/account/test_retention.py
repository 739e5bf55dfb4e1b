"""Account security's rows do not pile up: expired single-use tokens and ended mail go."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from globeguard.account.models import OneTimeToken
from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.account.retention import MAIL_KEPT, purge_once
from globeguard.kit.clock import utcnow
from globeguard.mail.models import MailMessage
from tests.helpers import signup


async def _count(container, model) -> int:
    async with container.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_expired_tokens_and_ended_mail_are_purged_live_ones_kept(client, container):
    user_id = uuid.UUID((await signup(client, "kim"))["user_id"])
    tokens = OneTimeTokens()
    async with container.db.transaction() as session:
        for ttl in (timedelta(days=-2), timedelta(hours=-1), timedelta(hours=1)):
            await tokens.issue(session, Purpose.PASSWORD_RESET, user_id, ttl)
        # Queued and given their ends in one transaction: no sender sees them in between.
        ids = [
            await container.mail.send(
                session,
                to="kim@example.com",
                template="password_changed",
                values={"username": "kim", "time": "now", "forgot_link": "x"},
            )
            for _ in range(4)
        ]
        old, now = utcnow() - MAIL_KEPT - timedelta(hours=1), utcnow()
        ends = [{"sent_at": old}, {"failed_at": old}, {"sent_at": now}, {"failed_at": now}]
        for message_id, values in zip(ids, ends, strict=True):
            await session.execute(
                update(MailMessage).where(MailMessage.id == message_id).values(**values)
            )

    assert await purge_once(container.db) == 3
    # A token expired an hour ago stays a day (a late click reads "expired"); a live one stays.
    assert await _count(container, OneTimeToken) == 2
    # Messages that ended within the week stay.
    assert await _count(container, MailMessage) == 2
