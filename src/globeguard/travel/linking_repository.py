"""The statements of subject linking: which users a batch of reported subjects name (one
query), the external ids other IdPs know users by, and the logins stored under a subject."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy import update as update_statement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import ExternalIdentity, User
from globeguard.ingest.models import ExternalUser
from globeguard.travel.models import LoginEvent, LoginProfile

USER: Table = User.__table__  # type: ignore[assignment]
EXTERNAL: Table = ExternalIdentity.__table__  # type: ignore[assignment]
INGESTED: Table = ExternalUser.__table__  # type: ignore[assignment]
EVENTS: Table = LoginEvent.__table__  # type: ignore[assignment]
PROFILES: Table = LoginProfile.__table__  # type: ignore[assignment]

# Ranks of the ways a subject can name a user, best first (see travel.linking).
BY_ID, BY_EXTERNAL_ID, BY_INGESTED_ID, BY_USERNAME, BY_EMAIL = 0, 1, 2, 3, 4


def _rank(value: int) -> Any:
    # Inline, not a bound parameter: PostgreSQL cannot type a parameter alone in a UNION.
    return literal_column(str(value)).label("rank")


def _one_of(dialect: str, column: Any, name: str, item: Any) -> Any:
    """`column` is one of the values of the parameter `name`, passed whole: an array on
    PostgreSQL, JSON text on SQLite. The text of the statement is then the same for any
    number of keys, so it is prepared once, where an expanding IN of 3,000 parameters was
    compiled and prepared anew every call (~50 ms per 1,000 subjects on PostgreSQL)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(item)))
    values: Any = select(literal_column("value")).select_from(
        func.json_each(bindparam(name, type_=String))
    )
    return column.in_(values.scalar_subquery())


def _owners_query(dialect: str) -> Any:
    """(rank, matched key, user id) for every way the looked-up keys name a user. Each arm
    probes a unique (or primary) key once per key."""
    no_key = cast(null(), String).label("key")
    return union_all(
        select(_rank(BY_ID), no_key, USER.c.id.label("user_id")).where(
            _one_of(dialect, USER.c.id, "ids", Uuid())
        ),
        select(_rank(BY_EXTERNAL_ID), EXTERNAL.c.external_id, EXTERNAL.c.user_id).where(
            _one_of(dialect, EXTERNAL.c.external_id, "externals", String())
        ),
        # A user another IdP announced (`POST /api/v1/ingest/users`) under this id, who is
        # the Globeguard user with the same email.
        select(_rank(BY_INGESTED_ID), INGESTED.c.user_id, USER.c.id)
        .join(USER, USER.c.email_key == func.lower(INGESTED.c.email))
        .where(_one_of(dialect, INGESTED.c.user_id, "externals", String())),
        select(_rank(BY_USERNAME), USER.c.username_key, USER.c.id).where(
            _one_of(dialect, USER.c.username_key, "usernames", String())
        ),
        select(_rank(BY_EMAIL), USER.c.email_key, USER.c.id).where(
            _one_of(dialect, USER.c.email_key, "emails", String())
        ),
    )


_OWNERS = {dialect: _owners_query(dialect) for dialect in ("postgresql", "sqlite")}
# Only rows nobody claimed yet: a login linked earlier (to its reporter's user, or by a
# better-ranked match) keeps its owner.
_LINK_EVENTS = (
    update_statement(EVENTS)
    .where(EVENTS.c.subject == bindparam("key"), EVENTS.c.user_id.is_(None))
    .values(user_id=bindparam("owner", type_=EVENTS.c.user_id.type))
)
_LINK_PROFILE = (
    update_statement(PROFILES)
    .where(PROFILES.c.subject == bindparam("key"), PROFILES.c.user_id.is_(None))
    .values(user_id=bindparam("owner", type_=PROFILES.c.user_id.type))
)


class LinkingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def matches(
        self,
        ids: Collection[uuid.UUID],
        externals: Collection[str],
        usernames: Collection[str],
        emails: Collection[str],
    ) -> list[tuple[int, str | None, uuid.UUID]]:
        """(rank, matched key, user id) of every user named by one of the keys: by id (the
        key is then None: the id is the match), stored external id, username key, email key.
        Soft-deleted users are included."""
        dialect = self._dialect()
        if dialect == "postgresql":
            params: dict[str, Any] = {
                "ids": list(ids),
                "externals": list(externals),
                "usernames": list(usernames),
                "emails": list(emails),
            }
        else:  # JSON text; ids as SQLite stores them (32 hex digits)
            params = {
                "ids": orjson.dumps([i.hex for i in ids]).decode(),
                "externals": orjson.dumps(list(externals)).decode(),
                "usernames": orjson.dumps(list(usernames)).decode(),
                "emails": orjson.dumps(list(emails)).decode(),
            }
        result = await self.session.execute(_OWNERS[dialect], params)
        return [(rank, key, user_id) for rank, key, user_id in result.all()]

    async def save_external_ids(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store each {external_id, source, user_id, created_at}; an id stored already moves
        to the user the newest report names (the IdP is the authority on its own ids)."""
        if not rows:
            return
        insert = postgresql.insert if self._dialect() == "postgresql" else sqlite.insert
        statement = insert(EXTERNAL)
        statement = statement.on_conflict_do_update(
            index_elements=[EXTERNAL.c.external_id],
            set_={"user_id": statement.excluded.user_id, "source": statement.excluded.source},
        )
        await self.session.execute(statement, list(rows))

    async def link_unowned(self, owners: dict[str, uuid.UUID]) -> int:
        """Give each subject's unowned logins (and its login profile) to its user; how many
        logins were linked."""
        if not owners:
            return 0
        params = [{"key": subject, "owner": user_id} for subject, user_id in owners.items()]
        linked = await self.session.execute(_LINK_EVENTS, params)
        await self.session.execute(_LINK_PROFILE, params)
        return int(linked.rowcount or 0)  # type: ignore[attr-defined]

    async def external_ids_of(self, user_id: uuid.UUID) -> list[tuple[str, str]]:
        """(external id, source) of a user, oldest first."""
        query = (
            select(EXTERNAL.c.external_id, EXTERNAL.c.source)
            .where(EXTERNAL.c.user_id == user_id)
            .order_by(EXTERNAL.c.created_at, EXTERNAL.c.external_id)
        )
        return [(external_id, source) for external_id, source in await self.session.execute(query)]

    async def logins_of_subject(
        self, subject: str, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        """The logins stored under exactly this subject, newest (highest id) first."""
        query = select(LoginEvent).where(LoginEvent.subject == subject)
        if before_id is not None:
            query = query.where(LoginEvent.id < before_id)
        query = query.order_by(LoginEvent.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name
