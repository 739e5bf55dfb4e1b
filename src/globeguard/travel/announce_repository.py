"""What announcing verdicts reads of stored login events: the rows a re-grade changed, and
the anchors (origins) of flagged journeys. Rows are returned as column mappings, read afresh:
an ORM object loaded earlier in the transaction may predate a re-grade's update."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.travel.models import LoginEvent

_TABLE = cast(Table, LoginEvent.__table__)
# Bound parameters per statement stay well under SQLite's and asyncpg's limits; a batch
# (at most a thousand events) is read in one statement.
_PER_QUERY = 2000


class AnnounceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_ids(self, ids: Collection[int]) -> list[dict[str, Any]]:
        return await self._where(_TABLE.c.id, sorted(ids))

    async def by_uuids(self, uuids: Collection[str]) -> dict[str, dict[str, Any]]:
        rows = await self._where(_TABLE.c.event_uuid, sorted(uuids))
        return {row["event_uuid"]: row for row in rows}

    async def _where(self, column: Any, values: Sequence[Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), _PER_QUERY):
            part = values[start : start + _PER_QUERY]
            result = await self.session.execute(select(_TABLE).where(column.in_(part)))
            found.extend(dict(row) for row in result.mappings())
        return found
