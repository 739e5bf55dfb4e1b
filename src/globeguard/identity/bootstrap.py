"""First admin: from `globeguard admin create` or GLOBEGUARD_BOOTSTRAP__ADMIN_* settings."""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.identity.models import User
from globeguard.identity.permissions import ADMIN_ROLE, USER_ROLE
from globeguard.identity.users.repository import UserRepository
from globeguard.identity.users.service import UserService
from globeguard.kit.errors import Conflict


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
    db: Database,
    username: str | None,
    password: str | None,
    email: str | None,
) -> User | None:
    """Idempotent: does nothing when the user already exists. Looks first with a read, so the
    write transaction opens only after `create` has hashed the password."""
    if not username or not password:
        return None
    async with db.read() as session:
        if await UserRepository(session).username_taken(username.lower()):
            return None
    try:
        async with db.transaction() as session:
            return await create_admin(users, session, username, password, email)
    except Conflict:  # another process starting at the same moment made it first
        return None
