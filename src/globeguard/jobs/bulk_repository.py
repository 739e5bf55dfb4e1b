"""Every SQL statement of bulk user export and import: keyset pages of plain rows (Core, no
ORM identity map, so memory stays flat), and multi-row writes per batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.models import OutboxEvent
from globeguard.events.outbox import WROTE_OUTBOX
from globeguard.identity.models import Role, User, UserRole

USER = cast(Table, User.__table__)
USER_ROLE = cast(Table, UserRole.__table__)
OUTBOX = cast(Table, OutboxEvent.__table__)


class UserExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        columns: Sequence[str],
        where: ColumnElement[bool] | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Rows ordered by (created_at, id) after `after`: each page is an index range scan
        on ix_user_created_at_id, however deep into the table it is. The two key columns are
        always selected last, for the next page's `after`."""
        selected = [USER.c[name] for name in columns] + [USER.c.created_at, USER.c.id]
        query = select(*selected).order_by(USER.c.created_at, USER.c.id).limit(limit)
        if where is not None:
            query = query.where(where)
        if after is not None:
            created, last_id = after
            query = query.where(
                or_(
                    USER.c.created_at > created,
                    and_(USER.c.created_at == created, USER.c.id > last_id),
                )
            )
        return (await self.session.execute(query)).all()


class UserImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing(
        self, ids: Iterable[uuid.UUID], usernames: Iterable[str], emails: Iterable[str]
    ) -> Sequence[Row[Any]]:
        """(id, username_key, email_key) of every stored user a batch could collide with."""
        query = select(USER.c.id, USER.c.username_key, USER.c.email_key).where(
            or_(
                USER.c.id.in_(list(ids)),
                USER.c.username_key.in_(list(usernames)),
                USER.c.email_key.in_(list(emails)),
            )
        )
        return (await self.session.execute(query)).all()

    async def role_id(self, name: str) -> uuid.UUID | None:
        return await self.session.scalar(select(Role.id).where(Role.name == name))

    async def insert_users(self, rows: Sequence[dict[str, Any]], role_id: uuid.UUID) -> None:
        if not rows:
            return
        await self.session.execute(insert(USER), list(rows))
        now = rows[0]["updated_at"]
        await self.session.execute(
            insert(USER_ROLE),
            [{"user_id": r["id"], "role_id": role_id, "assigned_at": now} for r in rows],
        )

    async def update_users(self, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        """One executemany per distinct set of changed columns (`rows` share `columns`);
        the revision goes up by one, as for any other change of the user."""
        if not rows:
            return
        statement = (
            update(USER)
            .where(USER.c.id == bindparam("b_id"))
            .values(
                {name: bindparam(f"b_{name}") for name in columns},
                revision=USER.c.revision + 1,
            )
        )
        params = [{f"b_{k}": r[k] for k in (*columns, "id")} for r in rows]
        await self.session.execute(statement, params)

    async def revisions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        query = select(USER.c.id, USER.c.revision).where(USER.c.id.in_(list(ids)))
        return {row[0]: row[1] for row in await self.session.execute(query)}

    async def record_events(self, events: Sequence[dict[str, Any]]) -> None:
        """Lifecycle events of a batch in one multi-row INSERT into the outbox (the same
        columns `events.outbox.record` writes one at a time), in the batch's transaction."""
        if events:
            await self.session.execute(insert(OUTBOX), list(events))
            self.session.info[WROTE_OUTBOX] = True
