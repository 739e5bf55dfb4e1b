"""Every SQL statement about users and their roles."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import ApiKey, AuthSession, Role, User, UserRole


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user, its row locked until the transaction ends, so what the caller checks
        still holds when it writes (PostgreSQL; SQLite's BEGIN IMMEDIATE already admits one
        writer at a time and ignores FOR UPDATE)."""
        query = select(User).where(User.id == user_id).with_for_update()
        return await self.session.scalar(query)

    async def username_taken(self, username_key: str) -> bool:
        found = await self.session.scalar(select(User.id).where(User.username_key == username_key))
        return found is not None

    async def email_taken(self, email_key: str, *, except_user: uuid.UUID | None = None) -> bool:
        query = select(User.id).where(User.email_key == email_key)
        if except_user is not None:
            query = query.where(User.id != except_user)
        return await self.session.scalar(query) is not None

    def add(self, user: User) -> None:
        self.session.add(user)

    async def flush(self) -> None:
        await self.session.flush()

    async def delete_row(self, user: User) -> None:
        await self.session.delete(user)

    async def page(
        self,
        where: ColumnElement[bool] | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[User]:
        """Keyset page ordered by (created_at, id): stable under inserts, no offset scans."""
        query = select(User).order_by(User.created_at, User.id).limit(limit)
        if where is not None:
            query = query.where(where)
        if after is not None:
            created, last_id = after
            # A row-value comparison seeks the (created_at, id) index straight to the page;
            # the equivalent OR of two conditions made SQLite re-read every earlier row.
            query = query.where(tuple_(User.created_at, User.id) > (created, last_id))
        return (await self.session.scalars(query)).all()

    async def subject_state(
        self, user_id: uuid.UUID, session_id: uuid.UUID | None
    ) -> tuple[int, str, bool] | None:
        """(token_version, status, session revoked) in one round trip."""
        revoked: Any = False
        if session_id is not None:
            revoked = (
                select(AuthSession.revoked_at.is_not(None))
                .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
                .scalar_subquery()
            )
        row = (
            await self.session.execute(
                select(User.token_version, User.status, revoked).where(User.id == user_id)
            )
        ).first()
        if row is None:
            return None
        # A session id that matches no session of this user counts as revoked.
        session_revoked = bool(row[2]) if row[2] is not None else session_id is not None
        return int(row[0]), str(row[1]), session_revoked

    async def bump_token_version(self, user_id: uuid.UUID) -> None:
        await self.bump_token_versions([user_id])

    async def bump_token_versions(self, user_ids: Sequence[uuid.UUID]) -> None:
        """Every access token of these users stops working (one statement for a batch)."""
        await self.session.execute(
            update(User)
            .where(User.id.in_(list(user_ids)))
            .values(token_version=User.token_version + 1)
        )

    async def clear_password_reset(self, user_ids: Sequence[uuid.UUID]) -> None:
        """These users' passwords were set again: they may sign in with them."""
        await self.session.execute(
            update(User)
            .where(User.id.in_(list(user_ids)), User.password_reset_required.is_(True))
            .values(password_reset_required=False)
        )


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Role | None:
        return await self.session.scalar(select(Role).where(func.lower(Role.name) == name.lower()))

    async def get(self, role_id: uuid.UUID) -> Role | None:
        return await self.session.get(Role, role_id)

    async def all(self) -> Sequence[Role]:
        return (await self.session.scalars(select(Role).order_by(Role.name))).all()

    def add(self, role: Role) -> None:
        self.session.add(role)

    async def remove(self, role: Role) -> None:
        await self.session.delete(role)

    async def roles_of(self, user_id: uuid.UUID) -> Sequence[Role]:
        query = (
            select(Role)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id)
            .order_by(Role.name)
        )
        return (await self.session.scalars(query)).all()

    async def role_names_of_many(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        if not user_ids:
            return {}
        query = (
            select(UserRole.user_id, Role.name)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id.in_(user_ids))
            .order_by(Role.name)
        )
        names: dict[uuid.UUID, list[str]] = {uid: [] for uid in user_ids}
        for user_id, name in await self.session.execute(query):
            names[user_id].append(name)
        return names

    async def has_assignment(self, user_id: uuid.UUID, role_id: uuid.UUID) -> bool:
        query = select(UserRole.user_id).where(
            UserRole.user_id == user_id, UserRole.role_id == role_id
        )
        return await self.session.scalar(query) is not None

    def assign(self, user_id: uuid.UUID, role_id: uuid.UUID) -> None:
        self.session.add(UserRole(user_id=user_id, role_id=role_id))

    async def unassign(self, user_id: uuid.UUID, role_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == role_id)
        )

    async def member_ids(self, role_id: uuid.UUID) -> Sequence[uuid.UUID]:
        query = select(UserRole.user_id).where(UserRole.role_id == role_id)
        return (await self.session.scalars(query)).all()

    async def count_active_admins(self, admin_role_id: uuid.UUID) -> int:
        query = (
            select(func.count())
            .select_from(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(UserRole.role_id == admin_role_id, User.status == "active")
        )
        return int(await self.session.scalar(query) or 0)


class CredentialRepository:
    """Sessions and API keys of a user, for bulk revocation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revoke_sessions(self, user_id: uuid.UUID, at: datetime, reason: str) -> int:
        return await self.revoke_sessions_of([user_id], at, reason)

    async def revoke_sessions_of(
        self,
        user_ids: Sequence[uuid.UUID],
        at: datetime,
        reason: str,
        keep: Sequence[uuid.UUID] = (),
    ) -> int:
        """End every live session (and so its refresh-token family) of these users but the
        `keep` ones, in one statement."""
        query = update(AuthSession).where(
            AuthSession.user_id.in_(list(user_ids)), AuthSession.revoked_at.is_(None)
        )
        if keep:
            query = query.where(AuthSession.id.not_in(list(keep)))
        result = await self.session.execute(query.values(revoked_at=at, revoked_reason=reason))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def revoke_api_keys(self, user_id: uuid.UUID, at: datetime) -> int:
        return await self.revoke_api_keys_of([user_id], at)

    async def revoke_api_keys_of(self, user_ids: Sequence[uuid.UUID], at: datetime) -> int:
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.user_id.in_(list(user_ids)), ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
