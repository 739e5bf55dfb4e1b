"""Alembic, driven from code: at start-up and by `globeguard db upgrade`.

Several processes may start together against one PostgreSQL database; an advisory lock makes
them migrate one at a time (the later ones find nothing to do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
# Arbitrary constant shared by every Globeguard process: "gg" start-up lock.
STARTUP_LOCK_ID = 0x6767_5354


def alembic_config(connection: Any | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@asynccontextmanager
async def startup_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """PostgreSQL: a session advisory lock on a side connection. SQLite: nothing to do (one
    process, and its single pooled connection must stay free for the work itself)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": STARTUP_LOCK_ID})
        await conn.commit()
        try:
            yield
        finally:
            await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": STARTUP_LOCK_ID})
            await conn.commit()


def include_in_comparison(dialect: str) -> Callable[..., bool]:
    """Leave out PostgreSQL-only indexes (GIN over JSONB) when comparing against SQLite."""

    def include(obj: Any, _name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
        if type_ == "index" and dialect != "postgresql":
            return obj.dialect_options["postgresql"].get("using") != "gin"
        return True

    return include


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    # Every start-up asks; nearly always the database is already there, and one read of its
    # revision costs far less than Alembic's full run (~15-20 ms) to find nothing to do.
    if revision == "head" and await current_revision(engine) == head_revision():
        return
    async with startup_lock(engine), engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


@cache
def head_revision() -> str | None:
    """The newest migration this package ships (read from the scripts once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
