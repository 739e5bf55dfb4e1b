"""Every SQL statement of the mail outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.mail.models import MailMessage

_MAIL = cast(Table, MailMessage.__table__)
c = _MAIL.c


def _due(now: datetime) -> Any:
    return (c.sent_at.is_(None)) & (c.failed_at.is_(None)) & (c.next_attempt_at <= now)


class MailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_MAIL).values(**values))

    async def any_due(self, now: datetime) -> bool:
        """A read first: an idle sender polls every second, and claiming is a write (on
        SQLite it takes the one write lock, even when nothing matches)."""
        found = await self.session.execute(select(c.id).where(_due(now)).limit(1))
        return found.first() is not None

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Row]:
        """Take up to `limit` due messages, oldest first, for this sender until `lease_until`:
        their next attempt moves there, so no other sender (in this process or another)
        takes them meanwhile, and one whose sender died is taken again when the lease ends.
        The attempt is counted now, so a message that kills its sender is not retried
        forever. On PostgreSQL rows another sender is claiming are skipped, not waited for;
        SQLite has one writer, so its claims cannot interleave."""
        picked = (
            select(c.id)
            .where(_due(now))
            .order_by(c.next_attempt_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # Computed once: as a plain `IN (subquery)` PostgreSQL may run the subquery again
            # for the update, and SKIP LOCKED plus LIMIT then picks more than `limit` rows.
            .cte("picked")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        stmt = (
            update(_MAIL)
            .where(c.id.in_(select(picked.c.id)))
            .where(_due(now))
            .values(next_attempt_at=lease_until, attempts=c.attempts + 1)
            .returning(c.id, c.kind, c.to_address, c.subject, c.body_sealed, c.attempts)
        )
        return (await self.session.execute(stmt)).all()

    async def mark_sent(self, message_id: uuid.UUID, now: datetime) -> None:
        """Sent: the sealed body (its single-use links) is dropped; the row stays as a record."""
        await self.session.execute(
            update(_MAIL)
            .where(c.id == message_id)
            .values(sent_at=now, body_sealed="", last_error=None)
        )

    async def mark_retry(
        self, message_id: uuid.UUID, error: str, next_attempt_at: datetime
    ) -> None:
        await self.session.execute(
            update(_MAIL)
            .where(c.id == message_id, c.sent_at.is_(None))
            .values(last_error=error[:512], next_attempt_at=next_attempt_at)
        )

    async def mark_failed(self, message_id: uuid.UUID, error: str, now: datetime) -> None:
        """Given up: kept (still sealed) for an operator to see, and to queue again by hand."""
        await self.session.execute(
            update(_MAIL)
            .where(c.id == message_id, c.sent_at.is_(None))
            .values(last_error=error[:512], failed_at=now)
        )

    async def get(self, message_id: uuid.UUID) -> MailMessage | None:
        return await self.session.get(MailMessage, message_id)

    async def everything(self) -> Sequence[MailMessage]:
        """Every message, oldest first (tests and diagnostics; the table is small)."""
        result = await self.session.execute(select(MailMessage).order_by(MailMessage.created_at))
        return result.scalars().all()

    async def purge_ended_before(self, cutoff: datetime) -> int:
        """Delete messages sent, or given up on, before `cutoff`; how many."""
        result = await self.session.execute(
            delete(_MAIL).where(
                (_MAIL.c.sent_at < cutoff)
                | (_MAIL.c.sent_at.is_(None) & (_MAIL.c.failed_at < cutoff))
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
