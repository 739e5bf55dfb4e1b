"""A claim's work on SQLite does not grow with the backlog: it reads the n deliveries it takes
and looks each up by primary key. Counted in SQLite virtual-machine steps (the progress
handler), not in time: the same count on any machine."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event

from globeguard.events.delivery import statements
from globeguard.events.models import Delivery, OutboxEvent, Subscription

SUBSCRIPTION = uuid.uuid4()
START = datetime(2026, 1, 1, tzinfo=UTC)
CLAIM_BATCH = 10
STEPS_PER_CALL = 100  # the handler runs once per this many VM steps


def _database(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    # The deliveries stand alone: no events or subscription rows behind them.
    event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA foreign_keys=OFF"))
    tables = [t.__table__ for t in (Subscription, OutboxEvent, Delivery)]
    Delivery.metadata.create_all(engine, tables=tables)  # type: ignore[arg-type]
    return engine


def _redriven_backlog(engine: Engine, size: int) -> None:
    """`size` deliveries due one microsecond apart, as a redrive leaves them, each a user of
    its own (so per-user order holds none back), beside as many already delivered."""
    stamp = statements.sqlite_text
    subscription = statements.sqlite_uuid(SUBSCRIPTION)
    rows = [
        (
            seq,
            subscription,
            f"user:{seq}",
            "pending" if seq % 2 else "succeeded",
            stamp(START + timedelta(microseconds=seq)),
        )
        for seq in range(1, 2 * size + 1)
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO delivery (event_seq, subscription_id, ordering_key, status, attempts,"
            " lease_expiries, redrives, next_attempt_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 0, 0, 1, ?, '2026-01-01', '2026-01-01')",
            rows,
        )


def _claim_steps(engine: Engine, *, ordered: bool) -> tuple[int, int]:
    """(VM steps, rows claimed) of one claim."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += STEPS_PER_CALL
        return 0  # go on

    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        raw.set_progress_handler(count, STEPS_PER_CALL)
        try:
            claimed = conn.execute(
                statements.SQLite.CLAIM[ordered],
                {
                    "b_sub": SUBSCRIPTION,
                    "b_now": START + timedelta(days=1),
                    "b_limit": CLAIM_BATCH,
                    "b_max": 1000,
                    "b_owner": "w",
                    "b_lease_until": START + timedelta(days=2),
                },
            ).all()
        finally:
            raw.set_progress_handler(None, STEPS_PER_CALL)
    return steps, len(claimed)


@pytest.mark.parametrize("ordered", [False, True])
def test_a_claim_costs_the_same_with_a_hundred_or_twenty_thousand_due(
    tmp_path: Path, ordered: bool
) -> None:
    costs = []
    for n, backlog in enumerate((100, 20_000)):
        engine = _database(tmp_path / f"claims-{n}.db")
        _redriven_backlog(engine, backlog)
        steps, claimed = _claim_steps(engine, ordered=ordered)
        engine.dispose()
        assert claimed == CLAIM_BATCH
        costs.append(steps)
    # A B-tree one level deeper may cost a little more; a walk over the backlog costs 200x.
    assert costs[1] < 2 * costs[0], costs
