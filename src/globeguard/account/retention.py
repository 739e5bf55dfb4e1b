"""Housekeeping of account security's rows: single-use tokens a day past their expiry (kept
that long so a late click still reads "expired", not "unknown"), and mail a week after it was
sent or given up on (a sent body is emptied at once; the row only tells an operator that the
message went)."""

from __future__ import annotations

from datetime import timedelta

from globeguard.account.one_time import OneTimeTokens
from globeguard.db.session import Database
from globeguard.kit.clock import utcnow
from globeguard.kit.periodic import every
from globeguard.mail.repository import MailRepository

INTERVAL = timedelta(hours=1)
MAIL_KEPT = timedelta(days=7)


async def purge_once(db: Database) -> int:
    """Rows deleted: expired tokens and ended mail."""
    now = utcnow()
    async with db.transaction() as session:
        tokens = await OneTimeTokens().purge_expired(session, now)
        mail = await MailRepository(session).purge_ended_before(now - MAIL_KEPT)
    return tokens + mail


async def retention_loop(db: Database) -> None:
    await every(INTERVAL, lambda: purge_once(db), "purging expired tokens and sent mail")
