"""Rollup upkeep through the observer, and retention: an aged-out day leaves the totals equal
to the sum of the remaining days, on both databases. The counts in memory (`facts`) are
checked against a plain count per (row, column) on random batches."""

from __future__ import annotations

import pickle
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from globeguard.analytics.facts import (
    day_counts,
    dimension_keys,
    facts_of,
    subject_counts,
    with_verdict,
    without_day,
)
from globeguard.analytics.models import (
    COUNTS,
    GeoFlaggedJourney,
    GeoLastLogin,
    GeoPlace,
    GeoRollupDay,
    GeoRollupTotal,
    GeoSubjectDay,
    GeoSubjectTotal,
    count_column,
)
from globeguard.analytics.params import VERDICTS
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


def vector(**counts: int) -> tuple[int, ...]:
    """A count vector from its non-zero columns."""
    return tuple(counts.get(name, 0) for name in COUNTS)


def counts_of(model) -> list:
    return [getattr(model, name) for name in COUNTS]


def test_an_event_counts_once_per_dimension_and_a_retraction_cancels_it():
    facts = facts_of(row(1, 0))
    counts = day_counts([(facts, 1)])
    assert len(counts) == 5 + 3 and set(counts.values()) == {vector(ok_none=1)}
    assert day_counts([(facts, 1), (facts, -1)]) == {}
    assert subject_counts([(facts, 1), (facts, -1)]) == {}
    unlocated = facts_of({**row(2, 0), "located": False, "city_geoname_id": None})
    assert [k[1] for k in day_counts([(unlocated, 1)])] == [10, 11]


def test_outcomes_and_verdicts_of_a_place_share_its_rows():
    kinds = [
        row(1, 0),
        {**row(1, 0), "verdict": None},  # no verdict yet counts as none
        row(1, 0, success=False, verdict="suspicious"),
    ]
    counts = day_counts([(facts_of(r), 1) for r in kinds])
    assert len(counts) == 5 + 3
    assert set(counts.values()) == {vector(ok_none=2, failed_suspicious=1)}
    [subject] = subject_counts([(facts_of(r), 1) for r in kinds]).values()
    assert subject == next(iter(counts.values()))
    # A re-grade moves the count between columns of the same rows.
    flagged = facts_of(kinds[2])
    moved = day_counts([(flagged, -1), (with_verdict(flagged, "impossible"), 1)])
    assert set(moved.values()) == {vector(failed_impossible=1, failed_suspicious=-1)}


# (subject, days ago, place, success, verdict, +1 | -1)
batches = st.lists(
    st.tuples(
        st.sampled_from(["s", "t"]),
        st.integers(0, 2),
        st.integers(0, 3),
        st.booleans(),
        st.sampled_from([*VERDICTS, None]),
        st.sampled_from([1, -1]),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(batches)
def test_count_vectors_are_the_counts_per_row_and_column(batch):
    items = []
    for n, (subject, days_ago, place, success, verdict, sign) in enumerate(batch):
        values = row(n, days_ago, subject=subject, success=success, verdict=verdict)
        # Place 0 has no coordinates and no city; the others are cities 11 km apart.
        values = {**values, "latitude": 48.85 + place * 0.1, "city_geoname_id": 100 + place}
        if place == 0:
            values = {**values, "located": False, "city_geoname_id": None}
        items.append((facts_of(values), sign))
    plain = Counter()
    by_subject = Counter()
    for facts, sign in items:
        column = count_column(facts.success, facts.verdict)
        for dim, key in dimension_keys(facts):
            plain[(facts.day, dim, key, column)] += sign
        key = (facts.subject, facts.day, facts.cell, facts.country_id, facts.region_id)
        by_subject[(*key, facts.city_id, column)] += sign
    all_days = Counter()
    for (_, dim, key, column), n in plain.items():
        all_days[(dim, key, column)] += n

    assert _flattened(day_counts(items)) == _nonzero(plain)
    assert _flattened(subject_counts(items)) == _nonzero(by_subject)
    assert _flattened(without_day(day_counts(items), 0)) == _nonzero(all_days)


def _nonzero(counts: Counter) -> Counter:
    # Not `+counts`: that also drops the negative counts of retractions.
    return Counter({k: n for k, n in counts.items() if n})


def _flattened(counts) -> Counter:
    """Count vectors as a count per (key, column); a vector of zeros is a bug."""
    assert all(any(amounts) for amounts in counts.values())
    return Counter(
        {
            (*key, column): n
            for key, amounts in counts.items()
            for column, n in zip(COUNTS, amounts, strict=True)
            if n
        }
    )


async def totals(session) -> dict:
    rows = await session.execute(
        select(GeoRollupTotal.dim, GeoRollupTotal.key, *counts_of(GeoRollupTotal))
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if any(r[2:])}


async def sum_of_days(session) -> dict:
    rows = await session.execute(
        select(
            GeoRollupDay.dim, GeoRollupDay.key, *(func.sum(c) for c in counts_of(GeoRollupDay))
        ).group_by(GeoRollupDay.dim, GeoRollupDay.key)
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if any(r[2:])}


async def test_retention_retires_old_days_from_the_totals(app):
    container = app.state.container
    observer = RollupObserver()
    async with container.db.transaction() as session:
        await observer.inserted(
            session,
            [
                row(1, 100),
                row(2, 95, subject="t"),
                row(3, 10),
                row(4, 100, success=False, verdict="suspicious"),
            ],
        )
    async with container.db.read() as session:
        before = await totals(session)
        assert before == await sum_of_days(session)
        assert before[(12, 2988507)] == vector(ok_none=3, failed_suspicious=1)

    settings = container.settings.analytics
    assert await purge_once(container.db, settings, now=NOW) > 0
    async with container.db.read() as session:
        after = await totals(session)
        assert after == await sum_of_days(session)
        assert after[(12, 2988507)] == vector(ok_none=1)
        assert await session.scalar(select(func.count()).select_from(GeoSubjectDay)) == 1
        kept = await session.execute(select(GeoSubjectTotal.subject, *counts_of(GeoSubjectTotal)))
        # The subject totals lost the retired days too, and the rows left at 0 went.
        assert [(r[0], tuple(r[1:])) for r in kept] == [("s", vector(ok_none=1))]
        last = (await session.execute(select(GeoLastLogin.subject))).scalars().all()
        assert last == ["s"]  # t's only login aged out
    assert await purge_once(container.db, settings, now=NOW) == 0


async def test_a_regrade_moves_counts_between_verdicts(app):
    container = app.state.container
    observer = RollupObserver()
    async with container.db.transaction() as session:
        await observer.inserted(session, [row(1, 1, verdict="plausible")])
    async with container.db.transaction() as session:
        stored = await session.execute(select(*counts_of(GeoRollupDay)))
        assert {tuple(r) for r in stored} == {vector(ok_plausible=1)}
        # The observer reads a re-graded event back from login_event by id.
        event = LoginEvent(**{k: v for k, v in row(1, 1, verdict="suspicious").items()}, source="t")
        session.add(event)
        await session.flush()
        await observer.regraded(session, [VerdictChange(event.id, "plausible", "suspicious")])
    async with container.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(GeoRollupDay)) == 5 + 3
        for model in (GeoRollupTotal, GeoSubjectDay, GeoSubjectTotal):
            summed = (await session.execute(select(*map(func.sum, counts_of(model))))).one()
            rows = 8 if model is GeoRollupTotal else 1
            assert tuple(summed) == vector(ok_suspicious=rows), model


ROLLUP_MODELS = (
    GeoRollupDay,
    GeoRollupTotal,
    GeoSubjectDay,
    GeoSubjectTotal,
    GeoFlaggedJourney,
    GeoLastLogin,
    GeoPlace,
    GeoFlaggedJourney,
    GeoPlace,
)


async def rollup_contents(session) -> dict:
    contents = {}
    for model in ROLLUP_MODELS:
        table = model.__table__
        rows = (await session.execute(select(table))).all()
        contents[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return contents


async def test_a_summary_made_elsewhere_writes_what_inserted_writes(app):
    """The demo seeder's producer process summarises its rows for the observer, and the
    seeder applies the (pickled) summary: the rollups must come out as `inserted` makes them."""
    container = app.state.container
    observer = RollupObserver()
    journey = {
        "origin": {"lat": 48.85, "lon": 2.35, "city_name": "Paris", "country_iso": "FR"},
        "destination": {"lat": 35.68, "lon": 139.69, "city_name": "Tokyo", "country_iso": "JP"},
        "distance_km": 9712.0,
        "elapsed_seconds": 3600.0,
        "speed_mph": 6035.0,
    }
    rows = [
        row(1, 3),
        row(2, 3, subject="t", success=False),
        row(3, 1),
        {**row(4, 0, subject="t", verdict="impossible"), "verdict_reasons": journey},
        {**row(5, 0, subject="u"), "located": False, "latitude": None, "longitude": None},
    ]
    async with container.db.transaction() as session:
        await observer.inserted(session, rows)
    async with container.db.read() as session:
        written = await rollup_contents(session)
    assert all(written.values())
    async with container.db.transaction() as session:
        for model in ROLLUP_MODELS:
            await session.execute(model.__table__.delete())
        summary = pickle.loads(pickle.dumps(observer.summarise(rows, {})))  # noqa: S301 - our own bytes
        await observer.apply(session, summary)
    async with container.db.read() as session:
        assert await rollup_contents(session) == written
