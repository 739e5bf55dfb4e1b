"""First admin: from `globeguard admin create` or GLOBEGUARD_BOOTSTRAP__ADMIN_* settings."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import User
from globeguard.identity.permissions import ADMIN_ROLE, USER_ROLE
from globeguard.identity.users.repository import UserRepository
from globeguard.identity.users.service import UserService


def generated_password() -> str:
    return secrets.token_urlsafe(18)


async def create_admin(
    users: UserService, session: AsyncSession, username: str, password: str, email: str | None
) -> User:
    return await users.create(
        session,
        {"username": username, "password": password, "email": email},
        actor="system",
        roles=[ADMIN_ROLE, USER_ROLE],
    )


async def ensure_bootstrap_admin(
    users: UserService,
    session: AsyncSession,
    username: str | None,
    password: str | None,
    email: str | None,
) -> User | None:
    """Idempotent: does nothing when the user already exists."""
    if not username or not password:
        return None
    if await UserRepository(session).username_taken(username.lower()):
        return None
    return await create_admin(users, session, username, password, email)
