"""Every SQL statement of signing in: the account's credentials, counting the sign-in, its
session and refresh tokens.

The sign-in's statements are built once and run on the connection, as Core: sign-in is hot,
its rows need no identity tracking, and building the statements per call, or running them
through the ORM session, cost more than running them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from globeguard.db.bulk import BulkInsert, run_steps
from globeguard.identity.models import AuthSession, RefreshToken, Role, User, UserRole
from globeguard.kit.clock import utcnow

_USER = cast(Table, User.__table__)
_ROLE = cast(Table, Role.__table__)
_USER_ROLE = cast(Table, UserRole.__table__)
_SESSION = cast(Table, AuthSession.__table__)
_REFRESH = cast(Table, RefreshToken.__table__)
_INSERT_REFRESH = insert(_REFRESH)


def _credentials_query(column: Any) -> Any:
    return (
        select(
            _USER.c.id,
            _USER.c.password_hash,
            _USER.c.status,
            _USER.c.token_version,
            _USER.c.password_reset_required,
            _USER.c.email,
            _USER.c.email_verified,
            _ROLE.c.name,
            _ROLE.c.permissions,
        )
        .outerjoin(_USER_ROLE, _USER_ROLE.c.user_id == _USER.c.id)
        .outerjoin(_ROLE, _ROLE.c.id == _USER_ROLE.c.role_id)
        .where(column == bindparam("key"))
        .order_by(_ROLE.c.name)
    )


_CREDENTIALS_BY_EMAIL = _credentials_query(_USER.c.email_key)
_CREDENTIALS_BY_USERNAME = _credentials_query(_USER.c.username_key)
_CREDENTIALS_BY_ID = _credentials_query(_USER.c.id)
# The user row comes back whole: the response shows the account as it is after the sign-in.
_RECORD_SIGNIN = (
    update(_USER)
    .where(_USER.c.id == bindparam("user_id"), _USER.c.status == "active")
    .where(_USER.c.password_hash == bindparam("verified_hash"))
    .where(_USER.c.password_reset_required.is_(False))
    .values(
        logins_count=_USER.c.logins_count + 1,
        last_login_at=bindparam("at"),
        last_login_ip=bindparam("ip"),
    )
    .returning(*_USER.c)
)
_RECORD_SIGNIN_REHASHED = _RECORD_SIGNIN.values(password_hash=bindparam("new_hash"))

SESSION_COLUMNS = (
    "id",
    "user_id",
    "created_at",
    "last_seen_at",
    "expires_at",
    "ip",
    "user_agent",
    "scope",
)
REFRESH_COLUMNS = ("id", "session_id", "parent_id", "token_hash", "issued_at", "expires_at")


def _session_with_refresh() -> Any:
    """A session and its first refresh token in one statement (PostgreSQL's data-modifying
    CTE: one round trip instead of two). The token's foreign key is checked at the end of the
    statement, when the session row exists."""
    new_session = (
        insert(_SESSION)
        .values({column: bindparam(f"s_{column}") for column in SESSION_COLUMNS})
        .cte("new_session")
    )
    return (
        insert(_REFRESH)
        .values({column: bindparam(f"r_{column}") for column in REFRESH_COLUMNS})
        .add_cte(new_session)
    )


_INSERT_SESSION_WITH_REFRESH = _session_with_refresh()
_SESSION_ROWS = BulkInsert(_SESSION, SESSION_COLUMNS)
_REFRESH_ROWS = BulkInsert(_REFRESH, REFRESH_COLUMNS)


def _insert_linked(
    table: Table, columns: Sequence[str], link: str, linked: Any, prefix: str, *when: Any
) -> Any:
    """INSERT INTO `table` one row whose `link` column comes from `linked` (a column of an
    earlier CTE) and every other column from the parameter `prefix` + its name; no row
    unless every `when` holds."""
    values = select(
        *(
            linked if name == link else bindparam(f"{prefix}{name}", type_=table.c[name].type)
            for name in columns
        )
    ).where(*when)
    return insert(table).from_select(list(columns), values)


def _signin_opening(counting: Any) -> Any:
    """PostgreSQL: a sign-in's counting UPDATE and, if the account's token version is still
    the one the sign-in's grants were read under, its session and first refresh token, in one
    statement (one round trip instead of two). Returns the user's row and `opened`."""
    # updated_at set as a parameter: SQLAlchemy fills a column's onupdate default for a
    # statement's own UPDATE, not for one inside a CTE.
    signed = counting.values(updated_at=bindparam("now")).cte("signed")
    new_session = (
        _insert_linked(
            _SESSION,
            SESSION_COLUMNS,
            "user_id",
            signed.c.id,
            "s_",
            signed.c.token_version == bindparam("expected_version"),
        )
        .returning(_SESSION.c.id)
        .cte("new_session")
    )
    new_refresh = _insert_linked(
        _REFRESH, REFRESH_COLUMNS, "session_id", new_session.c.id, "r_"
    ).cte("new_refresh")
    opened = exists(select(new_session.c.id)).label("opened")
    return select(*signed.c, opened).add_cte(new_refresh)


_OPENING = {False: _signin_opening(_RECORD_SIGNIN), True: _signin_opening(_RECORD_SIGNIN_REHASHED)}


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: uuid.UUID
    password_hash: str | None
    status: str
    # Bumped by every change to what the user may do: tells whether `roles` still hold.
    token_version: int
    # The password is presumed known to someone else: it verifies but no longer signs in.
    password_reset_required: bool
    roles: list[tuple[str, list[str]]]
    # Where a step-up code can be emailed: only to an address the user proved.
    email: str | None = None
    email_verified: bool = False


class SigninRepository:
    """The sign-in's statements about its account."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def credentials(self, identifier: str) -> Credentials | None:
        """What a sign-in needs about the account it names, roles included, in one query."""
        key = identifier.strip().lower()
        query = _CREDENTIALS_BY_EMAIL if "@" in key else _CREDENTIALS_BY_USERNAME
        return await self._credentials(query, key)

    async def credentials_of(self, user_id: uuid.UUID) -> Credentials | None:
        """The same facts by the account's id (a step-up completing a sign-in)."""
        return await self._credentials(_CREDENTIALS_BY_ID, user_id)

    async def _credentials(self, query: Any, key: Any) -> Credentials | None:
        rows = (await self.connection.execute(query, {"key": key})).all()
        if not rows:
            return None
        roles = [(name, list(permissions)) for *_, name, permissions in rows if name is not None]
        user_id, password_hash, status, token_version, reset_required, email, verified = rows[0][:7]
        return Credentials(
            user_id, password_hash, status, token_version, reset_required, roles, email, verified
        )

    async def record_signin(
        self,
        user_id: uuid.UUID,
        verified_hash: str | None,
        at: datetime,
        ip: str | None,
        new_hash: str | None,
    ) -> User | None:
        """Count the sign-in and return the user (detached: nothing tracks it), unless the
        account stopped being active, its password changed since `verified_hash` was read or
        a password reset became required meanwhile (one statement, no re-read)."""
        params = {"user_id": user_id, "verified_hash": verified_hash, "at": at, "ip": ip}
        if new_hash is None:
            result = await self.connection.execute(_RECORD_SIGNIN, params)
        else:
            result = await self.connection.execute(
                _RECORD_SIGNIN_REHASHED, {**params, "new_hash": new_hash}
            )
        row = result.first()
        return None if row is None else User(**row._mapping)

    async def record_signin_opening(
        self,
        user_id: uuid.UUID,
        verified_hash: str | None,
        at: datetime,
        ip: str | None,
        new_hash: str | None,
        *,
        token_version: int | None,
        session: dict[str, Any],
        refresh: dict[str, Any],
        sessions: SessionRepository,
    ) -> tuple[User | None, bool]:
        """`record_signin`, and the session (SESSION_COLUMNS) with its first refresh token
        (REFRESH_COLUMNS) stored when the user's token version is still `token_version`.
        Returns the user and whether the session was stored."""
        if self.connection.dialect.name != "postgresql":
            user = await self.record_signin(user_id, verified_hash, at, ip, new_hash)
            if user is None or user.token_version != token_version:
                return user, False
            await sessions.open(session, refresh)
            return user, True
        params = {
            "user_id": user_id,
            "verified_hash": verified_hash,
            "at": at,
            "ip": ip,
            "new_hash": new_hash,
            "expected_version": token_version,
            "now": utcnow(),
        }
        params.update((f"s_{k}", v) for k, v in session.items() if k != "user_id")
        params.update((f"r_{k}", v) for k, v in refresh.items() if k != "session_id")
        row = (await self.connection.execute(_OPENING[new_hash is not None], params)).first()
        if row is None:
            return None, False
        *columns, opened = row
        return User(**dict(zip(row._fields[:-1], columns, strict=True))), bool(opened)


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, session: dict[str, Any], refresh: dict[str, Any]) -> None:
        """Insert a session (SESSION_COLUMNS) and its first refresh token (REFRESH_COLUMNS).
        Nothing reads them back in the transaction: on the SQLite writer they ride along with
        its next statement or COMMIT (db.bulk.run_steps), two hops to its thread fewer."""
        connection = await self.session.connection()
        dialect = connection.dialect
        if dialect.name != "postgresql":
            steps = [_SESSION_ROWS.step(dialect, [session]), _REFRESH_ROWS.step(dialect, [refresh])]
            await run_steps(self.session, steps)
            return
        params = {f"s_{k}": v for k, v in session.items()}
        params.update((f"r_{k}", v) for k, v in refresh.items())
        await connection.execute(_INSERT_SESSION_WITH_REFRESH, params)

    async def insert_refresh(self, **values: Any) -> None:
        await (await self.session.connection()).execute(_INSERT_REFRESH, values)

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        return await self.session.get(AuthSession, session_id)

    async def of_user(
        self, user_id: uuid.UUID, *, live_only: bool, now: datetime
    ) -> Sequence[AuthSession]:
        query = select(AuthSession).where(AuthSession.user_id == user_id)
        if live_only:
            query = query.where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        return (await self.session.scalars(query.order_by(AuthSession.created_at))).all()

    async def refresh_by_hash(self, token_hash: str) -> tuple[RefreshToken, AuthSession] | None:
        query = (
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
        )
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1])

    async def claim_refresh(self, token_id: uuid.UUID, at: datetime) -> bool:
        """Mark the token used; False if a concurrent request used it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def has_used_child(self, token_id: uuid.UUID) -> bool:
        child = aliased(RefreshToken)
        query = select(exists().where(child.parent_id == token_id, child.used_at.is_not(None)))
        return bool(await self.session.scalar(query))

    async def revoke(self, session_id: uuid.UUID, at: datetime, reason: str) -> bool:
        result = await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, session_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id)
            .values(last_seen_at=at)
            .execution_options(synchronize_session=False)
        )
