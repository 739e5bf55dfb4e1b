"""The SQLite settle batch writes times as text itself (json_each applies no column type):
that text must be exactly what the column type stores, or comparisons such as
`next_attempt_at <= now` would order a settled delivery wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from globeguard.db.base import UtcDateTime
from globeguard.events.delivery.schedule import Outcome, Response, Verdict, decide
from globeguard.events.delivery.statements import sqlite_text

STORED = UtcDateTime().bind_processor(sqlite.dialect())
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), None])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), ZONES)
def test_sqlite_text_is_the_column_types_text(moment, zone):
    value = moment.replace(tzinfo=zone)
    assert STORED is not None
    assert sqlite_text(value) == STORED(value)


def test_no_time_is_null():
    assert sqlite_text(None) is None


def test_every_success_shares_one_unchanging_decision():
    first = decide(1, Response(200))
    assert decide(3, Response(204)) is first
    assert (first.verdict, first.outcome, first.delay) == (
        Verdict.SUCCEEDED,
        Outcome.DELIVERED,
        None,
    )
    assert not first.disable_subscription
    assert first.dead_reason is None
