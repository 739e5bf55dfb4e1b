"""PostgreSQL planner statistics kept current by the processes that grow tables (autovacuum
may be off, as it is on this machine's PostgreSQL). Without statistics a batch's look-up of
hundreds of subjects or events is planned as a sequential scan, and a plan cached while the
table was small stays one: `demo seed --users 80000` fell under 100 users/s past 30,000."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from globeguard.db import statistics
from globeguard.db.statistics import refresh_statistics
from globeguard.demo.service import DemoSeeder
from globeguard.travel.ingest import BulkIngestor, IngestReport, Login
from globeguard.travel.repository import TABLE
from tests.helpers import sequential_scans

# Look-ups per batch: with statistics, 50 of them against 20,000 rows use the index (a few
# hundred would rightly scan a table this small); without, their plans scan it.
BATCH = 50
GROWN_TO = 20_000
IP = "81.2.69.160"  # located by the bundled GeoIP database

Write = Callable[[BulkIngestor, AsyncSession, IngestReport], Awaitable[None]]


def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")


def new_batch() -> list[tuple[int, Login]]:
    now = datetime.now(UTC)
    return [
        (line, Login(f"s-{uuid.uuid4().hex}", now, IP, event_uuid=uuid.uuid4().hex))
        for line in range(BATCH)
    ]


async def ingest(ingestor: BulkIngestor, session: AsyncSession, report: IngestReport) -> None:
    await ingestor.store(session, new_batch(), "api", report)


async def seed(ingestor: BulkIngestor, session: AsyncSession, report: IngestReport) -> None:
    await ingestor.store_prepared(session, ingestor.prepare_new(new_batch(), "demo", {}), report)


async def stored_batch(
    engine: AsyncEngine, ingestor: BulkIngestor, write: Write
) -> tuple[IngestReport, int]:
    """The batch's report, and how many sequential scans of login_event its transaction made:
    this backend's own count, read before and after inside the transaction."""
    report = IngestReport()
    async with AsyncSession(engine) as session, session.begin():
        before = await sequential_scans(session, "login_event")
        await write(ingestor, session, report)
        return report, await sequential_scans(session, "login_event") - before


async def grow_events(engine: AsyncEngine, count: int) -> None:
    """`count` stored events, four per subject (a demo user has ~3.6), their modification
    count flushed to the statistics views at once rather than within a second or so."""
    start = datetime.now(UTC) - timedelta(days=1)
    prefix = uuid.uuid4().hex[:8]
    rows = [
        {
            "event_uuid": f"grown-{uuid.uuid4().hex}",
            "subject": f"grown-{prefix}-{n // 4}",
            "source": "api",
            "occurred_at": start + timedelta(seconds=n),
            "received_at": start,
            "success": True,
            "located": False,
        }
        for n in range(count)
    ]
    async with engine.connect() as connection:
        await connection.execute(insert(TABLE), rows)
        await connection.commit()
        await connection.execute(text("SELECT pg_stat_force_next_flush()"))
        await connection.commit()  # the end of this transaction flushes


async def database_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as connection:
        return await connection.scalar(text("SELECT clock_timestamp()"))


async def analysed_since(engine: AsyncEngine, table: str, since: datetime) -> bool:
    """Whether `table` was analysed, by anyone, after `since` (the database's clock). The
    statistics views show it once the analysing backend has reported, so this looks for up
    to a few seconds; an earlier test's analysis does not count."""
    for _ in range(50):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
            when = await connection.scalar(
                text(
                    "SELECT greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
                    "WHERE relname = :t"
                ),
                {"t": table},
            )
        if when is not None and when > since:
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("write", [ingest, seed], ids=["ingest", "seed"])
async def test_batches_look_stored_events_up_by_index_once_the_grown_table_is_analysed(
    app, container, database_url, backend, write
):
    postgres_only(backend)
    # One connection: every batch runs on the same prepared statements, whose plans were
    # made while login_event was small.
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(6):  # past the five runs after which a generic plan may be kept
            report, _ = await stored_batch(engine, container.ingestor, write)
            assert report.accepted == BATCH
        await grow_events(engine, GROWN_TO)
        assert "login_event" in await refresh_statistics(container.db)
        report, scans = await stored_batch(engine, container.ingestor, write)
    finally:
        await engine.dispose()
    assert report.accepted == BATCH
    assert scans == 0, f"{scans} sequential scans of {GROWN_TO:,} login events"


async def test_only_tables_grown_past_autovacuums_threshold_are_analysed_once(
    app, container, database_url, backend
):
    postgres_only(backend)
    engine = create_async_engine(database_url)
    try:
        await refresh_statistics(container.db)  # whatever start-up left due
        await grow_events(engine, 40)  # under the 50 rows any table may change unanalysed
        assert "login_event" not in await refresh_statistics(container.db)
        await grow_events(engine, 1_000)
        since = await database_now(engine)
        assert "login_event" in await refresh_statistics(container.db)
        assert await analysed_since(engine, "login_event", since)
        assert "login_event" not in await refresh_statistics(container.db)
    finally:
        await engine.dispose()


async def test_one_process_analyses_at_a_time(app, container, database_url, backend):
    postgres_only(backend)
    engine = create_async_engine(database_url)
    try:
        await grow_events(engine, 1_000)
        async with engine.begin() as holder:  # another process's keeper, mid-run
            await holder.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": statistics.KEEPER_LOCK}
            )
            assert await refresh_statistics(container.db) == []
        assert "login_event" in await refresh_statistics(container.db)
    finally:
        await engine.dispose()


async def test_a_table_that_cannot_be_analysed_holds_up_nothing_else(
    app, container, database_url, backend, monkeypatch
):
    postgres_only(backend)
    engine = create_async_engine(database_url)
    real = statistics.StatisticsRepository.analyse

    async def failing_on_login_event(self, table: str) -> None:
        await real(self, "no_such_table" if table == "login_event" else table)

    try:
        await grow_events(engine, 1_000)
        async with engine.connect() as connection:  # a second table due
            await connection.execute(text("CREATE TABLE stats_probe (n integer)"))
            await connection.execute(text("INSERT INTO stats_probe SELECT generate_series(1, 200)"))
            await connection.commit()
            await connection.execute(text("SELECT pg_stat_force_next_flush()"))
            await connection.commit()
        monkeypatch.setattr(statistics.StatisticsRepository, "analyse", failing_on_login_event)
        analysed = await refresh_statistics(container.db)
        assert "stats_probe" in analysed and "login_event" not in analysed
        monkeypatch.setattr(statistics.StatisticsRepository, "analyse", real)
        assert "login_event" in await refresh_statistics(container.db)  # the next run's
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS stats_probe"))
        await engine.dispose()


async def test_sqlite_has_nothing_to_analyse(app, container, backend):
    if backend != "sqlite":
        pytest.skip("SQLite only")
    assert await refresh_statistics(container.db) == []


async def test_a_demo_seed_analyses_the_tables_it_grows(app, container, database_url, backend):
    postgres_only(backend)
    engine = create_async_engine(database_url)
    try:
        since = await database_now(engine)
        seeder = DemoSeeder(container.db, container.ingestor, container.settings.geoip)
        report = await seeder.seed(60, seed=5, until=datetime.now(UTC))
        assert report.events > 50
        assert await analysed_since(engine, "login_event", since)
        assert await analysed_since(engine, "user", since)
    finally:
        await engine.dispose()


@pytest.fixture
def statistics_every_tenth_of_a_second(monkeypatch) -> None:
    monkeypatch.setattr(statistics, "STATISTICS_INTERVAL", timedelta(seconds=0.1))


async def test_a_running_server_analyses_what_it_grows(
    statistics_every_tenth_of_a_second, app, container, database_url, backend
):
    postgres_only(backend)
    engine = create_async_engine(database_url)
    try:
        since = await database_now(engine)
        await grow_events(engine, 1_000)
        assert await analysed_since(engine, "login_event", since)
    finally:
        await engine.dispose()
