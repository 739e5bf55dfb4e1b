"""Stored verdicts do not depend on the order events arrive in: posting a subject's events
in any order gives the verdicts of posting them in time order (checked through the database,
with every false-positive control on)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from globeguard.kit.clock import as_utc
from globeguard.travel import service as travel_service
from globeguard.travel.models import LoginEvent
from globeguard.travel.service import LoginReport
from globeguard.wiring import build
from tests.conftest import make_settings, wipe
from tests.support.mmdb import city_record, write_asn_db, write_city_db

PLACES = {
    "203.0.10.1": (40.7128, -74.0060),  # New York
    "203.0.10.2": (40.73, -73.99),  # New York, 3 km away
    "203.0.10.3": (51.5074, -0.1278),  # London
    "203.0.10.4": (-33.8688, 151.2093),  # Sydney
    "203.0.10.5": (41.8781, -87.6298),  # Chicago
}
# Two networks, so that known networks (a carrier's far hub) take part in the grading too.
NETWORKS = {"203.0.10.1": 64500, "203.0.10.2": 64501, "203.0.10.3": 64500, "203.0.10.4": 64501}
T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
async def container(database_url, tmp_path):
    db_file = write_city_db(
        tmp_path / "c.mmdb",
        {ip: city_record(lat, lon, radius=10, country="US") for ip, (lat, lon) in PLACES.items()},
    )
    asn_file = write_asn_db(
        tmp_path / "a.mmdb",
        {ip: {"autonomous_system_number": asn} for ip, asn in NETWORKS.items()},
    )
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file, "asn_db": asn_file},
        travel={"learning_logins": 2, "min_distance_km": 100, "known_place_days": 2},
    )
    container = build(settings)
    from globeguard.boot import prepare

    await prepare(container)
    try:
        yield container
    finally:
        await wipe(container)
        await container.db.dispose()


def reports(seed: int) -> list[LoginReport]:
    rng = random.Random(seed)
    ips = list(PLACES)
    return [
        LoginReport(
            subject="zoe",
            # Over three days, so that places recur on distinct days.
            occurred_at=T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60)),
            success=rng.random() < 0.8,
            source="test",
            ip=rng.choice(ips),
            event_uuid=f"ev-{i}",
        )
        for i in range(16)
    ]


async def post_all(container, items) -> dict[str, str]:
    for report in items:
        async with container.db.transaction() as session:
            await container.logins.record(session, report)
    async with container.db.read() as session:
        rows = (await session.scalars(select(LoginEvent))).all()
    verdicts = {r.event_uuid: r.verdict for r in rows}
    async with container.db.transaction() as session:
        for row in await session.scalars(select(LoginEvent)):
            await session.delete(row)
    return verdicts


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_any_posting_order_gives_the_time_order_verdicts(container, seed):
    items = reports(seed)
    # distinct times keep the order total regardless of arrival
    items = list({r.occurred_at: r for r in items}.values())
    in_time_order = await post_all(container, sorted(items, key=lambda r: r.occurred_at))
    shuffled = items[:]
    random.Random(seed + 100).shuffle(shuffled)
    assert await post_all(container, shuffled) == in_time_order
    assert set(in_time_order.values()) - {"none"}  # the scenario grades something


async def ingest_all(container, chunks) -> dict[str, str]:
    from globeguard.travel.ingest import IngestReport

    for chunk in chunks:
        report = IngestReport()
        async with container.db.transaction() as session:
            await container.ingestor.store(session, incoming(chunk), "test", report)
        assert report.error_count == 0
    async with container.db.read() as session:
        rows = (await session.scalars(select(LoginEvent))).all()
    verdicts = {r.event_uuid: r.verdict for r in rows}
    async with container.db.transaction() as session:
        for row in await session.scalars(select(LoginEvent)):
            await session.delete(row)
    return verdicts


@pytest.mark.parametrize("seed", [4, 5])
async def test_bulk_batches_in_any_order_match_one_by_one_recording(container, seed):
    items = list({r.occurred_at: r for r in reports(seed)}.values())
    one_by_one = await post_all(container, sorted(items, key=lambda r: r.occurred_at))
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    in_batches = await ingest_all(container, [shuffled[:4], shuffled[4:8], shuffled[8:]])
    assert in_batches == one_by_one


def incoming(items) -> list:
    from globeguard.travel.ingest import IncomingEvent

    return [
        (
            n,
            IncomingEvent(
                subject=r.subject,
                occurred_at=r.occurred_at,
                ip=r.ip,
                success=r.success,
                event_uuid=r.event_uuid,
            ),
        )
        for n, r in enumerate(items, start=1)
    ]


async def forget_profiles(container) -> None:
    from globeguard.travel.models import LoginProfile

    async with container.db.transaction() as session:
        for row in await session.scalars(select(LoginProfile)):
            await session.delete(row)


@pytest.mark.parametrize("seed", [6, 7])
async def test_events_graded_apart_from_the_database_match_one_by_one_recording(container, seed):
    """`prepare_new` grades a new subject's batch with no database (the demo seeder does it
    in another process); stored by `store_prepared`, it gives the one-by-one verdicts."""
    from globeguard.travel.ingest import IngestReport

    items = list({r.occurred_at: r for r in reports(seed)}.values())
    one_by_one = await post_all(container, sorted(items, key=lambda r: r.occurred_at))
    await forget_profiles(container)
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    prepared = container.ingestor.prepare_new(incoming(shuffled), "test", {})
    report = IngestReport()
    async with container.db.transaction() as session:
        await container.ingestor.store_prepared(session, prepared, report)
    assert report.accepted == len(items)
    async with container.db.read() as session:
        rows = (await session.scalars(select(LoginEvent))).all()
    assert {r.event_uuid: r.verdict for r in rows} == one_by_one
    assert set(one_by_one.values()) - {"none"}


async def test_prepared_events_are_refused_for_a_subject_with_history(container):
    from globeguard.kit.errors import Conflict
    from globeguard.travel.ingest import IngestReport

    items = sorted(reports(8), key=lambda r: r.occurred_at)
    async with container.db.transaction() as session:
        await container.ingestor.store(session, incoming(items[:1]), "test", IngestReport())
    prepared = container.ingestor.prepare_new(incoming(items[1:]), "test", {})
    with pytest.raises(Conflict):
        async with container.db.transaction() as session:
            await container.ingestor.store_prepared(session, prepared, IngestReport())
    async with container.db.read() as session:
        stored = (await session.scalars(select(LoginEvent.event_uuid))).all()
    assert stored == [items[0].event_uuid]  # the refused batch left nothing behind


async def stored_times(container) -> list[datetime]:
    """The subject's stored login times, in the order they were stored."""
    async with container.db.read() as session:
        rows = await session.scalars(select(LoginEvent.occurred_at).order_by(LoginEvent.id))
        return [as_utc(at) for at in rows.all()]


def replay_spy(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = travel_service.replayed_profiles

    async def spy(repo, subjects, *args, **kwargs):
        calls.extend(subjects)
        return await real(repo, subjects, *args, **kwargs)

    monkeypatch.setattr(travel_service, "replayed_profiles", spy)
    return calls


@pytest.mark.parametrize("happening_now", [True, False])
async def test_a_login_happening_now_is_timed_once_its_subject_is_serialised(
    container, monkeypatch, happening_now
):
    """A sign-in whose time was read before a concurrent sign-in of the same account was
    stored: happening now, it is timed after that one and graded from the profile; a login
    another system reported keeps the time it was given, and is graded from the stored
    events around it."""
    now = datetime.now(UTC)
    first = LoginReport(subject="zoe", occurred_at=now, success=True, source="t", ip="203.0.10.1")
    clock = (lambda: datetime.now(UTC)) if happening_now else None
    async with container.db.transaction() as session:
        await container.logins.record(session, first, now=clock)
    replays = replay_spy(monkeypatch)
    late = replace(first, occurred_at=now - timedelta(seconds=1))
    async with container.db.transaction() as session:
        await container.logins.record(session, late, now=clock)
    times = await stored_times(container)
    if happening_now:
        assert now <= times[0] <= times[1]
        assert replays == []
    else:
        assert times == [now, now - timedelta(seconds=1)]
        assert replays == ["zoe"]
