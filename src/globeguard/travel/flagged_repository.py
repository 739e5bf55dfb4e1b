"""The SQL behind the flagged sign-ins (`travel.flagged`) and the places of a journey's two
logins (also read by the analytics arcs): a page of flagged logins, logins by event uuid,
usernames by user id. Each is one statement, whatever the page size."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import User
from globeguard.travel.models import LoginEvent

FLAGGED_VERDICTS = ("suspicious", "impossible")
# Sent as literals, not bound: a partial index on `id WHERE verdict IN ('suspicious',
# 'impossible')` serves the page only when the query spells the same constants (SQLite
# scans the table for `IN (?, ?)`; PostgreSQL's planner likewise proves the predicate from
# constants).
IS_FLAGGED = LoginEvent.verdict.in_(
    bindparam("flagged_verdicts", FLAGGED_VERDICTS, expanding=True, literal_execute=True)
)

# Where a login was: what a journey's end shows.
PLACE_COLUMNS = (
    LoginEvent.event_uuid,
    LoginEvent.occurred_at,
    LoginEvent.latitude,
    LoginEvent.longitude,
    LoginEvent.accuracy_radius_km,
    LoginEvent.city_name,
    LoginEvent.subdivision_iso,
    LoginEvent.subdivision_name,
    LoginEvent.country_iso,
)

# A flagged login as the list shows it: its place, its verdict and the reasons (which name
# the anchor login and hold the measurement), and an admin's review.
FLAGGED_COLUMNS = (
    LoginEvent.id,
    LoginEvent.subject,
    LoginEvent.user_id,
    LoginEvent.source,
    LoginEvent.success,
    LoginEvent.verdict,
    LoginEvent.verdict_reasons,
    LoginEvent.review,
    LoginEvent.reviewed_at,
    *PLACE_COLUMNS,
)


class FlaggedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, before: int | None, limit: int) -> Sequence[Any]:
        """The newest flagged logins by arrival (id), below `before` when given."""
        query = (
            select(*FLAGGED_COLUMNS).where(IS_FLAGGED).order_by(LoginEvent.id.desc()).limit(limit)
        )
        if before is not None:
            query = query.where(LoginEvent.id < before)
        return (await self.session.execute(query)).all()

    async def logins(self, event_uuids: Collection[str]) -> dict[str, Any]:
        """Event uuid → the login's place and verdict reasons, for those still stored (one
        seek each on the unique index)."""
        wanted = sorted(set(event_uuids))
        if not wanted:
            return {}
        query = select(*PLACE_COLUMNS, LoginEvent.verdict_reasons).where(
            LoginEvent.event_uuid.in_(wanted)
        )
        return {row.event_uuid: row for row in await self.session.execute(query)}

    async def usernames(self, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        wanted = list(set(user_ids))
        if not wanted:
            return {}
        query = select(User.id, User.username).where(User.id.in_(wanted))
        return {row.id: row.username for row in await self.session.execute(query)}
