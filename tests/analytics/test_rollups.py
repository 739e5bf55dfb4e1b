"""Rollup upkeep through the observer, and retention: an aged-out day leaves the totals equal
to the sum of the remaining days, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from globeguard.analytics.facts import day_counts, facts_of, subject_counts
from globeguard.analytics.models import (
    GeoLastLogin,
    GeoRollupDay,
    GeoRollupTotal,
    GeoSubjectDay,
    GeoSubjectTotal,
)
from globeguard.analytics.rollups import RollupObserver, purge_once
from globeguard.travel.models import LoginEvent
from globeguard.travel.observers import VerdictChange

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def row(n: int, days_ago: int, *, subject: str = "s", success: bool = True, verdict="none"):
    return {
        "event_uuid": f"e{n}",
        "subject": subject,
        "user_id": None,
        "occurred_at": NOW - timedelta(days=days_ago),
        "success": success,
        "located": True,
        "latitude": 48.85 + n * 0.001,
        "longitude": 2.35,
        "country_iso": "FR",
        "country_geoname_id": 3017382,
        "subdivision_iso": "IDF",
        "subdivision_geoname_id": 3012874,
        "city_name": "Paris",
        "city_geoname_id": 2988507,
        "verdict": verdict,
        "verdict_reasons": None,
    }


def test_an_event_counts_once_per_dimension_and_a_retraction_cancels_it():
    facts = facts_of(row(1, 0))
    counts = day_counts([(facts, 1)])
    assert len(counts) == 5 + 3 and set(counts.values()) == {1}
    assert day_counts([(facts, 1), (facts, -1)]) == {}
    assert subject_counts([(facts, 1), (facts, -1)]) == {}
    unlocated = facts_of({**row(2, 0), "located": False, "city_geoname_id": None})
    assert [k[1] for k in day_counts([(unlocated, 1)])] == [10, 11]


async def totals(session) -> dict:
    rows = await session.execute(
        select(GeoRollupTotal.dim, GeoRollupTotal.key, GeoRollupTotal.events).where(
            GeoRollupTotal.events != 0
        )
    )
    return {(r.dim, r.key): r.events for r in rows}


async def sum_of_days(session) -> dict:
    rows = await session.execute(
        select(GeoRollupDay.dim, GeoRollupDay.key, func.sum(GeoRollupDay.events))
        .group_by(GeoRollupDay.dim, GeoRollupDay.key)
        .having(func.sum(GeoRollupDay.events) != 0)
    )
    return {(r[0], r[1]): r[2] for r in rows}


async def test_retention_retires_old_days_from_the_totals(app):
    container = app.state.container
    observer = RollupObserver()
    async with container.db.transaction() as session:
        await observer.inserted(session, [row(1, 100), row(2, 95, subject="t"), row(3, 10)])
    async with container.db.read() as session:
        before = await totals(session)
        assert before == await sum_of_days(session)
        assert before[(12, 2988507)] == 3

    settings = container.settings.analytics
    assert await purge_once(container.db, settings, now=NOW) > 0
    async with container.db.read() as session:
        after = await totals(session)
        assert after == await sum_of_days(session)
        assert after[(12, 2988507)] == 1
        assert await session.scalar(select(func.count()).select_from(GeoSubjectDay)) == 1
        kept = await session.execute(
            select(GeoSubjectTotal.subject, GeoSubjectTotal.events).where(
                GeoSubjectTotal.events != 0
            )
        )
        assert kept.all() == [("s", 1)]  # the subject totals lost the retired days too
        last = (await session.execute(select(GeoLastLogin.subject))).scalars().all()
        assert last == ["s"]  # t's only login aged out
    assert await purge_once(container.db, settings, now=NOW) == 0


async def test_a_regrade_moves_counts_between_verdicts(app):
    container = app.state.container
    observer = RollupObserver()
    async with container.db.transaction() as session:
        await observer.inserted(session, [row(1, 1, verdict="plausible")])
    async with container.db.transaction() as session:
        stored = await session.execute(select(GeoRollupDay.verdict).distinct())
        assert stored.scalars().all() == ["plausible"]
        # The observer reads a re-graded event back from login_event by id.
        event = LoginEvent(**{k: v for k, v in row(1, 1, verdict="suspicious").items()}, source="t")
        session.add(event)
        await session.flush()
        await observer.regraded(session, [VerdictChange(event.id, "plausible", "suspicious")])
    async with container.db.read() as session:
        by_verdict = await session.execute(
            select(GeoRollupTotal.verdict, func.sum(GeoRollupTotal.events)).group_by(
                GeoRollupTotal.verdict
            )
        )
        assert dict(by_verdict.all()) == {"plausible": 0, "suspicious": 8}
