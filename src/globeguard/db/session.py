"""Sessions. The request or job boundary owns the transaction: services and repositories
never commit; `Database.transaction()` commits once at the end or rolls back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from globeguard.db.engine import create_engine, create_read_engine, create_sessionmaker
from globeguard.settings import DatabaseSettings


async def finish(session: AsyncSession) -> None:
    """Commit what the unit of work did. A session that never touched the database (a request
    served from caches) has nothing to commit and skips the round trip."""
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        await session.commit()


class Database:
    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings)
        self.sessionmaker: async_sessionmaker[Any] = create_sessionmaker(self.engine)
        self.read_engine: AsyncEngine = create_read_engine(settings, self.engine)
        self._reader: async_sessionmaker[Any] = create_sessionmaker(self.read_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await finish(session)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Reads of committed data outside any transaction, releasing the connection at once
        (e.g. before hashing a password). Each statement sees its own snapshot."""
        # Closing (not rolling back) keeps loaded objects usable after the block: a rollback
        # would expire them.
        async with self._reader() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.read_engine.dispose()
