"""The login_profile statements of the bulk path, once per batch each: profiles read and
written as their stored JSON text, which `profile_store` compares and parses itself."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.bulk import DriverRows
from globeguard.travel.models import LoginProfile

PROFILES: Table = LoginProfile.__table__  # type: ignore[assignment]
COLUMNS = ("subject", "user_id", "last_at", "state")

# CAST: PostgreSQL's driver would otherwise parse the JSON column; the text itself is what
# the store compares. json::text is the text as written (json keeps it verbatim).
_TEXTS_OF = select(PROFILES.c.subject, PROFILES.c.last_at, cast(PROFILES.c.state, Text)).where(
    PROFILES.c.subject.in_(bindparam("subjects", expanding=True))
)


def _upsert(dialect: Dialect) -> Any:
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    statement = insert(PROFILES).values(
        {name: bindparam(name, type_=PROFILES.c[name].type) for name in COLUMNS}
    )
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["subject"],
        set_={
            "last_at": excluded.last_at,
            "state": excluded.state,
            # A row written for a reported subject keeps the user found for it earlier.
            "user_id": func.coalesce(excluded.user_id, PROFILES.c.user_id),
        },
    )


# The state is JSON text already: its column type would encode it again.
_UPSERT = DriverRows(PROFILES, _upsert, raw=["state"])


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def texts_of(self, subjects: Collection[str]) -> list[tuple[str, datetime, str]]:
        """(subject, time of its newest event, state as JSON text) of each stored profile."""
        connection = await self.session.connection()
        result = await connection.execute(_TEXTS_OF, {"subjects": list(subjects)})
        return [(subject, last_at, text) for subject, last_at, text in result.all()]

    async def upsert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert each profile ({subject, user_id, last_at, state: JSON text}), or replace
        the stored one (keeping its user when the row names none)."""
        await _UPSERT.run(self.session, rows)
