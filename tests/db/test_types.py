"""Column types and the bulk writer send the driver what SQLAlchemy's own path would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from globeguard.db.base import UtcDateTime
from globeguard.db.bulk import BulkInsert
from globeguard.travel.models import LoginProfile

SQLITE = sqlite.dialect()
zones = st.one_of(
    st.none(),
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
instants = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=zones
)


def sqlalchemy_text(value: datetime) -> str:
    utc = UtcDateTime().process_bind_param(value, SQLITE)
    return DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)(utc)


@given(instants)
def test_sqlite_times_are_stored_as_sqlalchemy_would_store_them(value):
    assert UtcDateTime().bind_processor(SQLITE)(value) == sqlalchemy_text(value)


def test_a_whole_second_keeps_its_microseconds_so_text_order_is_time_order():
    to_text = UtcDateTime().bind_processor(SQLITE)
    at = datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert to_text(at) == "2024-03-01 12:00:00.000000"
    assert to_text(at) < to_text(at + timedelta(microseconds=1))


def test_bulk_rows_become_the_driver_values_in_statement_order():
    insert = BulkInsert(LoginProfile.__table__, ["subject", "user_id", "last_at", "state"])
    owner = uuid.uuid4()
    at = datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    row = {"subject": "s", "user_id": owner, "last_at": at, "state": {"n": 1}}
    [values] = insert.tuples(SQLITE, [row])
    assert values[:3] == ("s", owner.hex, "2024-03-01 10:00:00.000000")
    assert values[3].replace(" ", "") == '{"n":1}'
    [on_postgres] = insert.tuples(postgresql.asyncpg.dialect(), [row])
    assert on_postgres[1] == owner and on_postgres[2] == at
