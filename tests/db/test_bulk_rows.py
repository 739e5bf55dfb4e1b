"""A batch written by the bulk path (`db.bulk.DriverRows`: one JSON text on PostgreSQL, an
executemany on SQLite) reads back exactly as it was given: floats to the last bit, times to
the microsecond and in UTC, text with quotes, escapes and characters outside the BMP, JSON
documents, booleans and missing values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from globeguard.travel.models import LoginEvent
from globeguard.travel.repository import _INSERT, TABLE

AWKWARD_TEXT = 'a"b\\c\nd\te — ünï 🌍 \'; DROP TABLE x; -- {"k": [1]}'
REASONS = {"earlier": 'é"1', "speed_mph": 0.1 + 0.2, "origin": {"lat": -33.868820000000004}}


def row(n: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {c.name: None for c in TABLE.columns if c.name != "id"}
    values.update(
        event_uuid=f"bulk-{n}",
        subject=f"subject-{n}",
        source="api",
        occurred_at=datetime(2024, 3, 1, 12, 0, 0, 123457, tzinfo=UTC) + timedelta(seconds=n),
        received_at=datetime(2024, 3, 1, 12, 5, tzinfo=UTC),
        success=n % 2 == 0,
        located=True,
        latitude=-33.868820000000004,
        longitude=151.20929 + n,
        accuracy_radius_km=1000,
        verdict="plausible",
        verdict_reasons=REASONS,
    )
    values.update(changes)
    return values


async def test_a_batch_reads_back_exactly_as_it_was_given(app: Any) -> None:
    db = app.state.container.db
    rows = [
        row(0),
        row(1, subject=AWKWARD_TEXT, user_agent="🌍" * 511 + "x", failure_reason="wrong"),
        # Another zone is stored as the same instant in UTC.
        row(2, occurred_at=datetime(2024, 3, 1, 14, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))),
        row(3, located=False, latitude=None, longitude=None, verdict_reasons=None, verdict=None),
        row(4, latitude=1e-7, longitude=-179.99999999999997, accuracy_radius_km=0),
    ]
    async with db.transaction() as session:
        await _INSERT.run(session, rows)
    async with db.read() as session:
        stored = {
            e.event_uuid: e
            for e in await session.scalars(
                select(LoginEvent).where(LoginEvent.event_uuid.like("bulk-%"))
            )
        }
    assert len(stored) == len(rows)
    for given in rows:
        event = stored[given["event_uuid"]]
        for name in ("subject", "success", "located", "latitude", "longitude", "user_agent"):
            assert getattr(event, name) == given[name], name
        for name in ("accuracy_radius_km", "failure_reason", "verdict", "verdict_reasons"):
            assert getattr(event, name) == given[name], name
        assert event.occurred_at == given["occurred_at"]
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert event.received_at == given["received_at"]
    assert stored["bulk-2"].occurred_at == datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
