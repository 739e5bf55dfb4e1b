"""PostgreSQL: planner statistics kept current as tables grow, whether autovacuum runs or not.

PostgreSQL plans from each table's statistics, which only ANALYZE (autovacuum's, when it is
on, within a minute or so) updates. Without them a table is planned by its size and default
selectivities, and a batch's look-ups of a column that is not unique (`login_event.subject IN
(...)`, hundreds of values) become sequential scans; a plan cached while a table was small
stays what it was until the table is analysed (ANALYZE invalidates it). Measured on a server
with autovacuum off: `demo seed --users 80000` fell from 800 to under 100 users/s past 30,000
users, each batch's look-up of its events taking 1-3 s on 130,000 rows.

So the processes that grow tables analyse them when PostgreSQL's own autovacuum rule says a
table is due (more rows changed since its last ANALYZE than 50 + 10 % of its rows): `serve`
every STATISTICS_INTERVAL, `demo seed` between its batches and once more, for every table,
when it ends. With autovacuum on, its ANALYZE resets the count and this finds nothing to do.
One process at a time (an advisory lock); a table the role does not own is skipped by
PostgreSQL with a warning. Keeping statistics is upkeep, never the work itself: an ANALYZE
that fails is logged and the seed, or the next table, carries on.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.kit.periodic import every

log = logging.getLogger(__name__)

STATISTICS_INTERVAL = timedelta(seconds=10)
# PostgreSQL's defaults for autovacuum_analyze_threshold and autovacuum_analyze_scale_factor.
ANALYZE_BASE_ROWS = 50
ANALYZE_SCALE = 0.1
KEEPER_LOCK = 0x67675354

_TAKE_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
# reltuples is -1 for a table never analysed (PostgreSQL 14+): its threshold is the base.
_STALE = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() "
    "AND s.n_mod_since_analyze > :base + :scale * greatest(c.reltuples, 0) "
    "ORDER BY s.relname"
)


class StatisticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take_keeper_lock(self) -> bool:
        """Until the transaction ends; False while another process holds it."""
        return bool(await self.session.scalar(_TAKE_LOCK, {"key": KEEPER_LOCK}))

    async def stale_tables(self) -> list[str]:
        rows = await self.session.execute(
            _STALE, {"base": ANALYZE_BASE_ROWS, "scale": ANALYZE_SCALE}
        )
        return [name for (name,) in rows.all()]

    async def analyse_all(self) -> None:
        """Every table of the database (that the role owns)."""
        await self.session.execute(text("ANALYZE"))

    async def analyse(self, table: str) -> None:
        quoted = self.session.get_bind().dialect.identifier_preparer.quote(table)
        await self.session.execute(text(f"ANALYZE {quoted}"))


async def refresh_statistics(db: Database) -> list[str]:
    """Analyse the tables that are due (PostgreSQL; SQLite: nothing); returns their names.
    Each table in a transaction of its own, so no more than one table's lock is ever held
    (a migration taking several never waits on this for long, nor deadlocks with it), and
    only while this process holds the keeper's lock: it stops when another process has it."""
    if db.dialect != "postgresql":
        return []
    async with db.transaction() as session:
        due = await StatisticsRepository(session).stale_tables()
    analysed = []
    for table in due:
        try:
            async with db.transaction() as session:
                repo = StatisticsRepository(session)
                if not await repo.take_keeper_lock():
                    break  # another process is at it, and reads the same counts
                if table not in await repo.stale_tables():
                    continue  # analysed by another process since this one looked
                await repo.analyse(table)
        except SQLAlchemyError:
            log.warning("could not analyse %s; trying again later", table, exc_info=True)
            continue
        analysed.append(table)
    if analysed:
        log.info("analysed %s: their planner statistics were out of date", ", ".join(analysed))
    return analysed


async def analyse_after_bulk_load(db: Database) -> None:
    """Every table analysed at once (PostgreSQL), after a command that loaded many rows: the
    modification counts of its last batches may not have reached `refresh_statistics` yet
    (each backend reports them at most once a second)."""
    if db.dialect != "postgresql":
        return
    try:
        async with db.transaction() as session:
            await StatisticsRepository(session).analyse_all()
    except SQLAlchemyError:
        log.warning("could not analyse the database after a bulk load", exc_info=True)


async def _refresh(db: Database) -> None:
    await refresh_statistics(db)


async def statistics_loop(db: Database) -> None:
    await every(STATISTICS_INTERVAL, lambda: _refresh(db), "refreshing planner statistics")
