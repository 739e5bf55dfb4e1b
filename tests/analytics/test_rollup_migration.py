"""The migration to count columns keeps the counts: rows of the old shape (a row per key,
outcome and verdict) become one row per key, and the downgrade gives back the rows that
counted something, on both databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from globeguard.analytics.models import COUNTS, GeoRollupDay, GeoSubjectTotal
from globeguard.db.base import UtcDateTime
from globeguard.db.engine import create_engine
from globeguard.db.migrate import alembic_config, upgrade
from globeguard.settings import DatabaseSettings
from tests.conftest import PG_ENV, _create_pg_database, _drop_pg_database

BEFORE = "0007_jobs"
DAY, OTHER_DAY = date(2026, 5, 1), date(2026, 5, 2)
USER = uuid.UUID("6f1c0d6e-3b7a-4c55-9d0e-2f1a8b9c7d10")


def old_table(name: str, *key: sa.ColumnClause[Any]) -> sa.TableClause:
    extra = [sa.column("user_id", sa.Uuid())] if name.startswith("geo_subject") else []
    return sa.table(
        name,
        *key,
        sa.column("success", sa.Boolean()),
        sa.column("verdict", sa.String()),
        *extra,
        sa.column("events", sa.Integer()),
    )


OLD_DAY = old_table(
    "geo_rollup_day", sa.column("dim"), sa.column("day", sa.Date()), sa.column("key")
)
OLD_SUBJECT_TOTAL = old_table(
    "geo_subject_total",
    sa.column("subject"),
    sa.column("cell"),
    sa.column("country_id"),
    sa.column("region_id"),
    sa.column("city_id"),
)
# The user table as revision BEFORE has it: the model's table carries columns added later.
OLD_USER = sa.table(
    "user",
    sa.column("id", sa.Uuid()),
    *(sa.column(name, sa.String()) for name in ("username", "username_key", "status")),
    sa.column("email_verified", sa.Boolean()),
    sa.column("user_metadata", sa.JSON()),
    sa.column("app_metadata", sa.JSON()),
    *(sa.column(name, sa.Integer()) for name in ("token_version", "revision", "logins_count")),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
)
PARIS = {"cell": 5, "country_id": 1, "region_id": 2, "city_id": 3}
COUNTRY_ONLY = {"cell": -1, "country_id": 1, "region_id": 0, "city_id": 0}


def old_row(success: bool, verdict: str, events: int, **key: Any) -> dict[str, Any]:
    return {**key, "success": success, "verdict": verdict, "events": events}


OLD_DAY_ROWS = [
    old_row(True, "none", 3, dim=12, day=DAY, key=7),
    old_row(False, "suspicious", 2, dim=12, day=DAY, key=7),
    old_row(True, "plausible", 0, dim=12, day=DAY, key=7),  # retracted, left at 0
    old_row(True, "none", 1, dim=12, day=OTHER_DAY, key=7),
    old_row(False, "impossible", 4, dim=0, day=DAY, key=99),
]
OLD_SUBJECT_ROWS = [
    # Written before the subject was known to be a user, then after.
    old_row(True, "none", 2, subject="s", **PARIS, user_id=None),
    old_row(False, "plausible", 1, subject="s", **PARIS, user_id=USER),
    old_row(True, "unverifiable", 1, subject="t", **COUNTRY_ONLY, user_id=None),
]


@pytest.fixture
async def empty(backend, tmp_path) -> AsyncIterator[AsyncEngine]:
    """A database of its own: the shared one is at the head revision already."""
    if backend == "sqlite":
        engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/m.db"))
        yield engine
        await engine.dispose()
        return
    url, name = await _create_pg_database(os.environ[PG_ENV])
    engine = create_engine(DatabaseSettings(url=url))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _drop_pg_database(os.environ[PG_ENV], name)


async def test_counts_survive_the_migration_both_ways(empty):
    await upgrade(empty, BEFORE)
    async with empty.begin() as conn:
        await conn.execute(sa.insert(OLD_USER), [_user()])
        await conn.execute(sa.insert(OLD_DAY), OLD_DAY_ROWS)
        await conn.execute(sa.insert(OLD_SUBJECT_TOTAL), OLD_SUBJECT_ROWS)

    await upgrade(empty)
    async with empty.connect() as conn:
        day = await _rows(conn, GeoRollupDay.__table__, ("dim", "day", "key"))
        subject = await _rows(conn, GeoSubjectTotal.__table__, ("subject", "cell", "user_id"))
    assert day == {
        (12, DAY, 7): {"ok_none": 3, "failed_suspicious": 2},
        (12, OTHER_DAY, 7): {"ok_none": 1},
        (0, DAY, 99): {"failed_impossible": 4},
    }
    # The rows of a key merge into one, owned by the user any of them named.
    assert subject == {
        ("s", 5, USER): {"ok_none": 2, "failed_plausible": 1},
        ("t", -1, None): {"ok_unverifiable": 1},
    }

    async with empty.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), BEFORE))
    async with empty.connect() as conn:
        restored = (await conn.execute(sa.select(OLD_DAY))).all()
        restored_subjects = (await conn.execute(sa.select(OLD_SUBJECT_TOTAL))).all()
    # Back a row per outcome and verdict; the one that counted nothing is not.
    assert sorted(tuple(r) for r in restored) == sorted(
        tuple(r.values()) for r in OLD_DAY_ROWS if r["events"]
    )
    assert len(restored_subjects) == 3


def _user() -> dict[str, Any]:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    return {
        "id": USER,
        "username": "u",
        "username_key": "u",
        "email_verified": False,
        "user_metadata": {},
        "app_metadata": {},
        "status": "active",
        "token_version": 0,
        "revision": 0,
        "logins_count": 0,
        "created_at": now,
        "updated_at": now,
    }


async def _rows(conn: Any, table: Any, key: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    """Each row's key → its non-zero counts by column."""
    rows = (await conn.execute(sa.select(table))).mappings()
    return {tuple(r[k] for k in key): {c: r[c] for c in COUNTS if r[c]} for r in rows}
