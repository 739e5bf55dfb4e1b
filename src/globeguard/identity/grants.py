"""What a user may do right now: their roles and the scopes those roles grant."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.permissions import PROFILE_SCOPE
from globeguard.identity.users.repository import RoleRepository


@dataclass(frozen=True, slots=True)
class Grants:
    roles: list[str]
    scopes: frozenset[str]

    def session_scopes(self, requested: str | None) -> list[str]:
        """Scopes for a new session: all granted, or the granted subset of `requested`."""
        if not requested:
            return sorted(self.scopes, key=lambda s: (s != PROFILE_SCOPE, s))
        wanted = set(requested.split())
        return sorted(self.scopes & wanted, key=lambda s: (s != PROFILE_SCOPE, s))


def grants_from(roles: Iterable[tuple[str, Iterable[str]]]) -> Grants:
    """From (role name, permissions) pairs."""
    roles = list(roles)
    permissions = {p for _, granted in roles for p in granted}
    return Grants([name for name, _ in roles], frozenset({PROFILE_SCOPE, *permissions}))


async def grants_of(session: AsyncSession, user_id: uuid.UUID) -> Grants:
    roles = await RoleRepository(session).roles_of(user_id)
    return grants_from((r.name, r.permissions) for r in roles)
