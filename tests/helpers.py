"""Small API helpers for tests: sign up, sign in, build auth headers."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STRONG = "correct-horse-battery-staple-7"


async def signup(
    client: httpx.AsyncClient, username: str, password: str = STRONG, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/signup", json={"username": username, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def signin(
    client: httpx.AsyncClient, username: str, password: str = STRONG
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/signin", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def make_admin(
    client: httpx.AsyncClient, container, username: str = "root"
) -> dict[str, Any]:
    """Create an admin through the same path as `globeguard admin create`, then sign in."""
    from globeguard.identity.bootstrap import create_admin

    async with container.db.transaction() as session:
        await create_admin(container.users, session, username, STRONG, None)
    return await signin(client, username)


async def sequential_scans(session: AsyncSession, table: str) -> int:
    """PostgreSQL: the sequential scans of `table` this session's backend has made in its
    transaction so far (pg_stat_xact_user_tables: its own count, which the app's background
    work cannot move). Read before and after what is measured."""
    scans = await session.scalar(
        text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = :t"), {"t": table}
    )
    return int(scans or 0)
