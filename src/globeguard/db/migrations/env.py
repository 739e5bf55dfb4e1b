"""Alembic environment: runs on the connection handed over by globeguard.db.migrate, or on
GLOBEGUARD_DB__URL when invoked through the alembic CLI (for `alembic revision`)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from globeguard.db.engine import create_engine
from globeguard.db.migrate import include_in_comparison
from globeguard.db.registry import metadata
from globeguard.settings import Settings


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_in_comparison(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    engine = create_engine(Settings().db)
    async with engine.begin() as conn:
        await conn.run_sync(run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    asyncio.run(run_standalone())
