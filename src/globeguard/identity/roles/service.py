"""Roles over the closed permission list. Any change to what a user may do bumps their token
version, so access tokens minted with the old roles stop working at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.authority import (
    Presenter,
    acts_as_admin,
    ensure_grantable,
    ensure_may_change,
)
from globeguard.identity.grants import grants_of
from globeguard.identity.models import Role, User
from globeguard.identity.permissions import ADMIN_ROLE, BUILTIN_ROLES, Permission
from globeguard.identity.users import lifecycle
from globeguard.identity.users.repository import RoleRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.errors import Conflict, NotFound, Unprocessable


def _checked_permissions(permissions: Sequence[str]) -> list[str]:
    known = {p.value for p in Permission}
    unknown = sorted(set(permissions) - known)
    if unknown:
        raise Unprocessable(
            f"unknown permissions: {', '.join(unknown)}",
            code="unknown_permission",
            allowed=sorted(known),
        )
    return sorted(set(permissions))


class RoleService:
    async def ensure_builtin(self, session: AsyncSession) -> None:
        repo = RoleRepository(session)
        for name, (description, permissions) in BUILTIN_ROLES.items():
            role = await repo.by_name(name)
            if role is None:
                repo.add(
                    Role(
                        name=name,
                        description=description,
                        builtin=True,
                        permissions=sorted(permissions),
                    )
                )
            elif set(role.permissions) != set(permissions):
                # New releases may add permissions; the built-in roles follow the code.
                role.permissions = sorted(permissions)
        await session.flush()

    async def all(self, session: AsyncSession) -> Sequence[Role]:
        return await RoleRepository(session).all()

    async def names_of(self, session: AsyncSession, user_id: uuid.UUID) -> list[str]:
        return [r.name for r in await RoleRepository(session).roles_of(user_id)]

    async def names_of_many(
        self, session: AsyncSession, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        return await RoleRepository(session).role_names_of_many(user_ids)

    async def get(self, session: AsyncSession, role_id: uuid.UUID) -> Role:
        role = await RoleRepository(session).get(role_id)
        if role is None:
            raise NotFound("no such role", code="role_not_found")
        return role

    async def by_name(self, session: AsyncSession, name: str) -> Role:
        role = await RoleRepository(session).by_name(name)
        if role is None:
            raise NotFound(f"no role named '{name}'", code="role_not_found")
        return role

    async def create(
        self,
        session: AsyncSession,
        name: str,
        description: str | None,
        permissions: Sequence[str],
        *,
        presenter_scopes: Iterable[str],
        actor: str,
    ) -> Role:
        checked = _checked_permissions(permissions)
        ensure_grantable(presenter_scopes, checked, "a role")
        repo = RoleRepository(session)
        if await repo.by_name(name) is not None:
            raise Conflict("a role with that name exists", code="role_exists")
        role = Role(name=name, description=description, permissions=checked)
        repo.add(role)
        await session.flush()
        await self._event(session, EventType.ROLE_CREATED, role, actor, None)
        return role

    async def update(
        self,
        session: AsyncSession,
        role: Role,
        description: str | None,
        permissions: Sequence[str] | None,
        *,
        presenter_scopes: Iterable[str],
        actor: str,
    ) -> Role:
        if role.builtin:
            raise Conflict("built-in roles cannot be changed", code="role_builtin")
        # A role someone else filled with more than we hold is theirs to change.
        ensure_grantable(presenter_scopes, role.permissions, "a role")
        if description is not None:
            role.description = description
        if permissions is not None:
            checked = _checked_permissions(permissions)
            ensure_grantable(presenter_scopes, checked, "a role")
            role.permissions = checked
            await self._revoke_members(session, role, actor)
        await self._event(session, EventType.ROLE_UPDATED, role, actor, None)
        return role

    async def delete(
        self, session: AsyncSession, role: Role, *, presenter_scopes: Iterable[str], actor: str
    ) -> None:
        if role.builtin:
            raise Conflict("built-in roles cannot be deleted", code="role_builtin")
        ensure_grantable(presenter_scopes, role.permissions, "a role")
        await self._revoke_members(session, role, actor)
        await self._event(session, EventType.ROLE_DELETED, role, actor, None)
        await RoleRepository(session).remove(role)

    async def is_admin(self, session: AsyncSession, user_id: uuid.UUID) -> bool:
        """Holds the `admin` role, or roles that together grant every permission."""
        grants = await grants_of(session, user_id)
        return ADMIN_ROLE in grants.roles or acts_as_admin(grants.scopes)

    async def ensure_may_change(
        self,
        session: AsyncSession,
        target: uuid.UUID,
        presenter: Presenter,
    ) -> None:
        """Changing another admin's account, by any path, needs a credential that acts as
        admin: otherwise `users:write` could block, or `roles:manage` demote, every admin."""
        if target == presenter.user_id:
            return
        ensure_may_change(presenter.scopes, await self.is_admin(session, target))

    async def _may_hand(
        self, session: AsyncSession, user: User, role: Role, presenter: Presenter
    ) -> None:
        """Giving or taking a role: only one within the presenter's own permissions, and on
        another admin only as admin."""
        ensure_grantable(presenter.scopes, role.permissions, f"the role '{role.name}'")
        await self.ensure_may_change(session, user.id, presenter)

    async def assign(
        self,
        session: AsyncSession,
        user: User,
        role: Role,
        *,
        presenter: Presenter,
        actor: str,
    ) -> bool:
        await self._may_hand(session, user, role, presenter)
        repo = RoleRepository(session)
        if await repo.has_assignment(user.id, role.id):
            return False
        repo.assign(user.id, role.id)
        await self._revoke_users(session, [user.id], actor)
        await self._event(session, EventType.ROLE_ASSIGNED, role, actor, user.id)
        return True

    async def unassign(
        self,
        session: AsyncSession,
        user: User,
        role: Role,
        *,
        presenter: Presenter,
        actor: str,
    ) -> bool:
        await self._may_hand(session, user, role, presenter)
        repo = RoleRepository(session)
        if not await repo.has_assignment(user.id, role.id):
            return False
        last_admin = (
            role.name == ADMIN_ROLE
            and user.status == "active"
            and await repo.count_active_admins(role.id) <= 1
        )
        if last_admin:
            raise Conflict("cannot remove the last active admin", code="last_admin")
        await repo.unassign(user.id, role.id)
        await self._revoke_users(session, [user.id], actor)
        await self._event(session, EventType.ROLE_REMOVED, role, actor, user.id)
        return True

    async def _revoke_members(self, session: AsyncSession, role: Role, actor: str) -> None:
        members = await RoleRepository(session).member_ids(role.id)
        await self._revoke_users(session, members, actor)

    @staticmethod
    async def _revoke_users(
        session: AsyncSession, user_ids: Sequence[uuid.UUID], actor: str
    ) -> None:
        """Through the account lifecycle every path shares: token versions bumped (one
        statement for all members), caches told. The role events are the caller's."""
        changes = [lifecycle.AccountChange(user_id, roles=True) for user_id in user_ids]
        await lifecycle.apply(session, changes, actor=actor, now=utcnow())

    @staticmethod
    async def _event(
        session: AsyncSession, type_: EventType, role: Role, actor: str, user_id: uuid.UUID | None
    ) -> None:
        payload = {"role_id": str(role.id), "role": role.name, "permissions": role.permissions}
        if user_id is not None:
            payload["user_id"] = str(user_id)
        await record(
            session,
            type_,
            actor=actor,
            aggregate_type="role",
            aggregate_id=str(role.id),
            user_id=user_id,
            payload=payload,
        )
