"""PostgreSQL: an import's batches look users up through their indexes however small the
table was when the import began. A batch's statements are prepared once per connection, and
after five runs PostgreSQL may keep one generic plan for them; made while the table was small
it is a sequential scan testing every row against every listed value, and an import of
100,000 users slowed from ~3,500 users/s to ~100 as the table grew under it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from globeguard.identity.models import User
from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.jobs.imports import ImportAuthority, ImportReport, UserImporter
from globeguard.jobs.reader import Item
from tests.helpers import sequential_scans

BATCH = 5
GROWN_TO = 20_000


def new_users(count: int) -> list[Item]:
    return [
        Item(position, {"username": f"imp_{uuid.uuid4().hex[:12]}", "email_verified": False})
        for position in range(count)
    ]


async def import_batch(engine, importer: UserImporter) -> tuple[ImportReport, int]:
    """The batch's report, and how many sequential scans of `user` its transaction made:
    this backend's own count (the app's background work cannot add to it), read before and
    after, as it may still hold earlier transactions' counts not yet flushed."""
    report = ImportReport()
    async with AsyncSession(engine) as session, session.begin():
        before = await sequential_scans(session, "user")
        await importer.store_batch(
            session,
            new_users(BATCH),
            upsert=True,
            actor="test",
            now=datetime.now(UTC),
            report=report,
            authority=ImportAuthority.of(ALL_PERMISSIONS),
        )
        return report, await sequential_scans(session, "user") - before


async def grow_users(connection: AsyncConnection, count: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "username": f"grown_{n}",
            "username_key": f"grown_{n}",
            "email_verified": False,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    await connection.execute(insert(User.__table__), rows)
    await connection.commit()


async def test_a_batch_finds_existing_users_by_index_after_the_table_grew_under_the_import(
    app, container, database_url, backend
):
    if backend != "postgresql":
        pytest.skip("plan caching is PostgreSQL's")
    # One connection: every batch runs its statements on the same prepared statements.
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    importer = UserImporter(16384)
    try:
        for _ in range(6):  # past the five runs after which a generic plan may be kept
            report, _ = await import_batch(engine, importer)
            assert report.inserted == BATCH
        async with engine.connect() as connection:
            await grow_users(connection, GROWN_TO)
        report, scans = await import_batch(engine, importer)
    finally:
        await engine.dispose()
    assert report.inserted == BATCH
    assert scans == 0, f"{scans} sequential scans of {GROWN_TO:,} users"
