"""What the bulk path writes, written faster, must be what it wrote before: the same driver
values as SQLAlchemy's conversions, the same profiles, and a remembered profile never taken
for a row another writer (or a rolled-back transaction) left different."""

from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from globeguard.db.engine import _json_dumps
from globeguard.travel.ingest import BulkIngestor, IngestReport, Login
from globeguard.travel.models import LoginEvent
from globeguard.travel.profile import Profile
from globeguard.travel.repository import _INSERT, TABLE
from tests.travel.factories import WITH_CONTROLS
from tests.travel.test_profile import histories, moved_forward

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def dialects() -> list[Any]:
    found = []
    for dialect in (sqlite.pysqlite.dialect(), postgresql.asyncpg.dialect()):
        dialect._json_serializer = _json_dumps
        found.append(dialect)
    return found


def event_row(n: int, **changes: Any) -> dict[str, Any]:
    row = {c.name: None for c in TABLE.columns if c.name != "id"}
    row.update(
        event_uuid=f"e{n}",
        subject=f"s{n % 3}",
        source="api",
        occurred_at=T0 + timedelta(seconds=n, microseconds=n * 7),
        received_at=T0,
        success=n % 2 == 0,
        located=True,
        latitude=51.5 + n,
        longitude=-0.12,
        accuracy_radius_km=20,
        verdict="plausible",
        verdict_reasons={"earlier": "e0", "speed_mph": 1.5 * n, "origin": {"lat": 1.0}},
    )
    row.update(changes)
    return row


def sqlalchemy_values(dialect: Any, name: str, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The column's values as SQLAlchemy's own bind processing sends them."""
    convert = TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return tuple(row[name] if convert is None else convert(row[name]) for row in rows)


@pytest.mark.parametrize("dialect", dialects(), ids=lambda d: d.name)
def test_event_rows_reach_the_driver_as_sqlalchemy_converts_them(dialect: Any) -> None:
    shared = datetime(2024, 3, 1, 12, tzinfo=UTC)
    rows = [
        event_row(1),
        event_row(2, received_at=shared, user_id=uuid.uuid4()),
        event_row(3, received_at=shared, verdict_reasons=None, verdict=None),
        # Times in other zones and naive ones (UTC by convention) are converted, not cut.
        event_row(4, occurred_at=datetime(2024, 3, 1, 13, tzinfo=timezone(timedelta(hours=1)))),
        event_row(5, occurred_at=datetime(2024, 3, 1, 12, 0, 0, 5)),
        event_row(6, located=False, latitude=None, longitude=None, geo_reason="not_found"),
    ]
    names = _INSERT._for(dialect).names
    expected = {name: sqlalchemy_values(dialect, name, rows) for name in names}
    got = dict(zip(names, zip(*_INSERT.values(dialect, rows), strict=True), strict=True))
    assert got == expected
    by_column = {n: list(c) for n, c in zip(names, _INSERT.columns(dialect, rows), strict=True)}
    assert by_column == {name: list(column) for name, column in expected.items()}


def test_a_postgresql_batch_is_one_json_parameter_not_an_array_per_column() -> None:
    """asyncpg checks each element of an array parameter against abstract base classes, ~1 µs
    a value on the event loop (~240 values a `POST /v1/` event with its rollups): a batch
    goes as one JSON text, one value, whatever its rows and columns."""
    dialect = dialects()[1]
    rows = [event_row(n, user_id=uuid.uuid4()) for n in range(5)]
    sql, parameters, many = _INSERT.step(dialect, rows)
    assert not many
    assert len(parameters) == 1 and isinstance(parameters[0], str)
    assert "$2" not in sql
    sent = orjson.loads(parameters[0])
    assert len(sent) == len(rows)
    assert sent[1][_INSERT._for(dialect).names.index("event_uuid")] == "e1"


@given(histories())
def test_a_remembered_profile_is_the_one_its_text_gives(events: list[Any]) -> None:
    profile = moved_forward(events, WITH_CONTROLS)
    if profile.latest is None:
        return
    text = orjson.dumps(profile.to_doc()).decode()
    assert profile.as_stored() == Profile.from_doc(orjson.loads(text))


# --- through the database -------------------------------------------------------------------


def login(key: str, minutes: int, ip: str = "81.2.69.160") -> Login:
    return Login("rita", T0 + timedelta(minutes=minutes), ip, event_uuid=key)


async def store(ingestor: BulkIngestor, container: Any, *events: Login) -> None:
    report = IngestReport()
    async with container.db.transaction() as session:
        await ingestor.store(session, list(enumerate(events, start=1)), "test", report)
    assert report.accepted == len(events)


async def anchor_of(container: Any, key: str) -> str | None:
    async with container.db.read() as session:
        reasons = await session.scalar(
            select(LoginEvent.verdict_reasons).where(LoginEvent.event_uuid == key)
        )
    return None if reasons is None else reasons["earlier"]


async def test_a_profile_written_by_another_process_is_read_afresh(app: Any) -> None:
    container = app.state.container
    ours = container.ingestor
    theirs = BulkIngestor(ours.locator, ours.settings, ours.observers)  # another process's
    await store(ours, container, login("r1", 0))
    await store(theirs, container, login("r2", 10))
    await store(ours, container, login("r3", 20))
    # r3 comes after r2, which this process did not write: its anchor is r2, not r1.
    assert await anchor_of(container, "r3") == "r2"


async def test_a_profile_of_a_rolled_back_batch_is_not_taken_for_the_stored_one(
    app: Any,
) -> None:
    container = app.state.container
    ingestor = container.ingestor
    await store(ingestor, container, login("q1", 0))

    async def fail_after_storing() -> None:
        async with container.db.transaction() as session:
            await ingestor.store(session, [(1, login("q2", 10))], "test", IngestReport())
            raise RuntimeError("the batch fails after its profiles were written")

    with pytest.raises(RuntimeError):
        await fail_after_storing()
    await store(ingestor, container, login("q3", 20))
    assert await anchor_of(container, "q3") == "q1"


def test_a_stream_pauses_the_cycle_collector_and_gives_it_back_even_on_failure() -> None:
    from globeguard.travel.ingest_routes import _collector_paused

    def failing_stream() -> None:
        with _collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("the stream failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        failing_stream()
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()  # not turned on by a stream if it was off
    finally:
        gc.enable()
