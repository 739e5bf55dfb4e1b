"""The dispatcher's statements, built once, one per batch and not one per delivery.

Why whole batches in one parameter: SQLAlchemy's executemany processes every row's
parameters in Python (~10 us a row per statement here), and each statement is a round trip
(PostgreSQL) or a hop to the SQLite writer thread. A batch goes as one JSON text (SQLite,
read with json_each) or as one array per column (PostgreSQL, read with unnest), which the
database unpacks in C. On SQLite the row values are written as the column types store them
(`sqlite_text`, `sqlite_uuid`): a statement reading JSON applies no type of ours.

Claims differ by dialect and are tested on both: PostgreSQL takes rows with `FOR UPDATE SKIP
LOCKED` (concurrent workers pass each other's rows by) in a materialized CTE and returns the
claimed events' columns in the same statement; SQLite takes them with one `UPDATE … WHERE id
IN (SELECT … LIMIT n) RETURNING` under its single writer lock. SQLAlchemy compiles
`with_for_update(skip_locked=True)` to nothing on SQLite, silently, so the SQLite path never
relies on it. Both count the subscription's deliveries in flight inside the claim, so the
claim never takes more than `max_in_flight` allows.

Claims take the most overdue first (next_attempt_at, then id). The due index (subscription_id,
status, next_attempt_at) yields rows in that order, so a claim reads the n rows it takes;
ordered by event_seq it read and sorted every due row (1.8 ms a claim with 8,000 due here,
growing with the backlog). Fan-out and redrive set next_attempt_at in event order, so a
backlog still goes out oldest event first; per-user order on an ordered subscription is the
NOT EXISTS guard's, whatever order the claim takes rows in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    TextClause,
    Uuid,
    bindparam,
    case,
    func,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.selectable import TextualSelect
from sqlalchemy.types import TypeEngine

from globeguard.db.base import JsonDoc, UtcDateTime
from globeguard.events.delivery.records import DEAD, INFLIGHT, PENDING
from globeguard.events.models import Delivery, OutboxEvent, Subscription

_DELIVERY = cast(Table, Delivery.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_SUBSCRIPTION = cast(Table, Subscription.__table__)
_D = _DELIVERY.c

# SQLite's stored forms of a datetime and a uuid, from the column types themselves.
_SQLITE_TIME = UtcDateTime().bind_processor(sqlite.dialect())
_SQLITE_UUID = Uuid().bind_processor(sqlite.dialect())
assert _SQLITE_TIME is not None and _SQLITE_UUID is not None


def sqlite_text(value: datetime | None) -> str | None:
    """The column type's text for `value`. A UTC time (every clock here gives one) is cut
    from its own isoformat: the type's general path (to UTC, drop the zone, format) costs
    three times as much, three times per settled attempt."""
    if value is not None and value.tzinfo is UTC:
        return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"
    return _SQLITE_TIME(value)  # type: ignore[misc]


def sqlite_uuid(value: uuid.UUID) -> str:
    return _SQLITE_UUID(value)  # type: ignore[misc,no-any-return]


_TIME = UtcDateTime()
_EVENT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "seq": Integer(),
    "event_id": String(),
    "type": String(),
    "aggregate_type": String(),
    "aggregate_id": String(),
    "aggregate_version": Integer(),
    "occurred_at": UtcDateTime(),
    "payload": JsonDoc,
}
_EVENT_SQL = (
    "o.seq, o.event_id, o.type, o.aggregate_type, o.aggregate_id, o.aggregate_version, "
    "o.occurred_at, o.payload"
)

# -- statements the same on both ---------------------------------------------------------

UNDISPATCHED = (
    select(
        _OUTBOX.c.seq,
        _OUTBOX.c.type,
        _OUTBOX.c.user_id,
        _OUTBOX.c.aggregate_type,
        _OUTBOX.c.aggregate_id,
    )
    .where(_OUTBOX.c.dispatched_at.is_(None))
    .order_by(_OUTBOX.c.seq)
    .limit(bindparam("b_limit", type_=Integer))
)
_POISON = _D.lease_expiries + 1 >= bindparam("b_max", type_=Integer)
RECLAIM = (
    _DELIVERY.update()
    .where(_D.status == INFLIGHT, _D.lease_until < bindparam("b_now"))
    .values(
        status=case((_POISON, DEAD), else_=PENDING),
        dead_reason=case((_POISON, "poison_worker"), else_=None),
        finished_at=case((_POISON, bindparam("b_now")), else_=None),
        lease_expiries=_D.lease_expiries + 1,
        lease_owner=None,
        lease_until=None,
        next_attempt_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
    .returning(_D.id, _D.status)
)
# FOR NO KEY UPDATE: it excludes another worker's claim lock all the same, but not the key
# share lock a fan-out's INSERT of a delivery takes on its subscription (the foreign key),
# which FOR UPDATE made wait for the claiming worker's commit.
LOCK_SUBSCRIPTION = (
    select(_SUBSCRIPTION.c.id)
    .where(_SUBSCRIPTION.c.id == bindparam("b_sub"))
    .with_for_update(skip_locked=True, key_share=True)
)
IN_FLIGHT = select(func.count()).where(
    _D.subscription_id == bindparam("b_sub"), _D.status == INFLIGHT
)

# SQL fragments of the text statements below: literals only, never input (hence the
# `noqa: S608` where they are put together). Statuses are spelled out as records.py has them.
_IN_FLIGHT_SQL = (
    "SELECT count(*) FROM delivery WHERE subscription_id = :b_sub AND status = 'inflight'"
)
# Per-user order: a user's delivery waits while an older one of theirs is unsettled (pending
# or in flight); dead ones do not hold the line, or one poison event would stall the user
# for good.
_OLDER_UNSETTLED_SQL = (
    " AND NOT EXISTS (SELECT 1 FROM delivery AS older"
    " WHERE older.subscription_id = d.subscription_id"
    " AND older.ordering_key = d.ordering_key"
    " AND older.event_seq < d.event_seq"
    " AND older.status IN ('pending', 'inflight'))"
)


def _typed(statement: TextClause, **types: Any) -> TextClause:
    return statement.bindparams(*(bindparam(name, type_=kind) for name, kind in types.items()))


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_claim(ordered: bool) -> TextClause:
    # max(0, …): SQLite takes a negative LIMIT as no limit at all. The `+` keeps the outer
    # UPDATE off the (status, lease_until) index: by it SQLite walked every pending delivery
    # and tested each against the n ids (4.1 ms a claim with 40,000 due, 0.7 ms with 4,000)
    # instead of looking the n ids up by primary key. The claimed event's columns
    # come back as one JSON array per row (SQLite's RETURNING cannot join): no second
    # statement, no second hop to the writer thread.
    return _typed(
        text(
            "UPDATE delivery SET status = 'inflight', lease_owner = :b_owner,"  # noqa: S608
            " lease_until = :b_lease_until, updated_at = :b_now"
            " WHERE delivery.id IN ("
            "SELECT d.id FROM delivery AS d"
            " WHERE d.subscription_id = :b_sub AND d.status = 'pending'"
            " AND d.next_attempt_at <= :b_now"
            + (_OLDER_UNSETTLED_SQL if ordered else "")
            + " ORDER BY d.next_attempt_at, d.id"
            " LIMIT max(0, min(:b_limit, :b_max - ("
            + _IN_FLIGHT_SQL
            + ")))) AND +delivery.status = 'pending'"
            " RETURNING delivery.id, delivery.event_seq, delivery.attempts,"
            " (SELECT json_array(o.event_id, o.type, o.aggregate_type, o.aggregate_id,"
            " o.aggregate_version, o.occurred_at, json(o.payload))"
            " FROM event_outbox AS o WHERE o.seq = delivery.event_seq)"
        ),
        b_sub=Uuid(),
        b_now=_TIME,
        b_lease_until=_TIME,
    )


class SQLite:
    """json_each over one JSON text parameter per batch. The `+` before a column keeps
    SQLite from driving an UPDATE … FROM by that column's index (every delivery in flight)
    instead of by the primary key of each row in the batch."""

    CLAIM = {ordered: _sqlite_claim(ordered) for ordered in (False, True)}
    EVENTS = text(
        "SELECT " + _EVENT_SQL + " FROM event_outbox AS o"  # noqa: S608
        " WHERE o.seq IN (SELECT value FROM json_each(:b_seqs))"
    ).columns(**_EVENT_COLUMNS)
    INSERT_DELIVERIES = _typed(
        text(
            "INSERT INTO delivery (event_seq, subscription_id, ordering_key, status, attempts,"
            " lease_expiries, redrives, next_attempt_at, created_at, updated_at)"
            " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
            " json_extract(value, '$[2]'), 'pending', 0, 0, 0, :b_now, :b_now, :b_now"
            " FROM json_each(:b_rows) WHERE true"
            " ON CONFLICT (event_seq, subscription_id) DO NOTHING"
        ),
        b_now=_TIME,
    )
    MARK_DISPATCHED = _typed(
        text(
            "UPDATE event_outbox SET dispatched_at = :b_now"
            " WHERE seq IN (SELECT value FROM json_each(:b_seqs))"
        ),
        b_now=_TIME,
    )
    # Settling is one statement: rows inserted into a TEMP view whose INSTEAD OF trigger writes
    # each attempt row and updates its delivery, in batch order (so of two attempts of one
    # delivery the first settles it, as row-by-row statements did). TEMP objects live with
    # the writer connection: SETTLE_SETUP (IF NOT EXISTS) goes before every SETTLE. Both ride
    # along with the cycle's claim or COMMIT (ledger.py): no hop of their own, where a hop is
    # 0.4-0.7 ms of a ~4.5 ms cycle on a busy loop.
    SETTLE_SETUP = (
        text(
            "CREATE TEMP VIEW IF NOT EXISTS settle_attempt (delivery_id, owner, worker,"
            " status, next_attempt_at, last_status, last_error, dead_reason, finished_at,"
            " attempted_at, duration_ms, outcome, response) AS SELECT NULL, NULL, NULL, NULL,"
            " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        ),
        text(
            "CREATE TEMP TRIGGER IF NOT EXISTS settle_attempt_row"
            " INSTEAD OF INSERT ON settle_attempt BEGIN"
            " INSERT INTO delivery_attempt (delivery_id, attempted_at, duration_ms, outcome,"
            " status_code, error, response, worker) VALUES (NEW.delivery_id, NEW.attempted_at,"
            " NEW.duration_ms, NEW.outcome, NEW.last_status, NEW.last_error, NEW.response,"
            " NEW.worker);"
            " UPDATE delivery SET status = NEW.status, attempts = attempts + 1,"
            " next_attempt_at = NEW.next_attempt_at, last_status = NEW.last_status,"
            " last_error = NEW.last_error, dead_reason = NEW.dead_reason,"
            " finished_at = NEW.finished_at, lease_owner = NULL, lease_until = NULL,"
            " updated_at = NEW.attempted_at"
            " WHERE id = NEW.delivery_id AND lease_owner = NEW.owner AND status = 'inflight';"
            " END"
        ),
    )
    SETTLE = text(
        "INSERT INTO settle_attempt SELECT json_extract(value, '$[0]'), :b_owner, :b_worker,"
        " json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
        " json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
        " json_extract(value, '$[5]'), json_extract(value, '$[6]'),"
        " json_extract(value, '$[7]'), json_extract(value, '$[8]'),"
        " json_extract(value, '$[9]'), json_extract(value, '$[10]')"
        " FROM json_each(:b_rows) ORDER BY key"
    )


# -- PostgreSQL ------------------------------------------------------------------------------


def _postgres_claim(ordered: bool) -> TextualSelect:
    # A materialized CTE runs the locking SELECT once. Written as `id IN (SELECT … LIMIT n
    # FOR UPDATE SKIP LOCKED)` PostgreSQL may rescan the subquery for each row, skip the rows
    # this very statement just locked, and take far more than n. The count of those in flight
    # sees what the previous holder of the subscription's lock committed: this statement's
    # snapshot is taken after the lock statement returned.
    return _typed(
        text(
            "WITH due AS MATERIALIZED ("  # noqa: S608
            "SELECT d.id FROM delivery AS d"
            " WHERE d.subscription_id = :b_sub AND d.status = 'pending'"
            " AND d.next_attempt_at <= :b_now"
            + (_OLDER_UNSETTLED_SQL if ordered else "")
            + " ORDER BY d.next_attempt_at, d.id"
            " LIMIT GREATEST(0, LEAST(:b_limit, :b_max - ("
            + _IN_FLIGHT_SQL
            + "))) FOR UPDATE SKIP LOCKED"
            "), claimed AS ("
            "UPDATE delivery SET status = 'inflight', lease_owner = :b_owner,"
            " lease_until = :b_lease_until, updated_at = :b_now"
            " FROM due WHERE delivery.id = due.id"
            " RETURNING delivery.id, delivery.event_seq, delivery.attempts"
            ") SELECT c.id, c.attempts, "
            + _EVENT_SQL
            + " FROM claimed AS c JOIN event_outbox AS o ON o.seq = c.event_seq"
        ),
        b_sub=Uuid(),
        b_now=_TIME,
        b_lease_until=_TIME,
    ).columns(id=Integer(), attempts=Integer(), **_EVENT_COLUMNS)


class Postgres:
    """unnest over one array parameter per column."""

    CLAIM = {ordered: _postgres_claim(ordered) for ordered in (False, True)}
    EVENTS = text(
        "SELECT " + _EVENT_SQL + " FROM event_outbox AS o"  # noqa: S608
        " WHERE o.seq = ANY(CAST(:b_seqs AS BIGINT[]))"
    ).columns(**_EVENT_COLUMNS)
    INSERT_DELIVERIES = _typed(
        text(
            "INSERT INTO delivery (event_seq, subscription_id, ordering_key, status, attempts,"
            " lease_expiries, redrives, next_attempt_at, created_at, updated_at)"
            " SELECT s.seq, s.sub, s.key, 'pending', 0, 0, 0, :b_now, :b_now, :b_now"
            " FROM unnest(CAST(:b_seqs AS BIGINT[]), CAST(:b_subs AS UUID[]),"
            " CAST(:b_keys AS VARCHAR[])) AS s(seq, sub, key)"
            " ON CONFLICT (event_seq, subscription_id) DO NOTHING"
        ),
        b_now=_TIME,
    )
    MARK_DISPATCHED = _typed(
        text(
            "UPDATE event_outbox SET dispatched_at = :b_now"
            " WHERE seq = ANY(CAST(:b_seqs AS BIGINT[]))"
        ),
        b_now=_TIME,
    )
    # The attempt rows and the delivery updates in one statement (one round trip): a CTE that
    # inserts, and the UPDATE. They touch different tables, so one snapshot suits both. The
    # batch is one JSON array of rows (ledger.py says why), read in its order: id, first (this
    # attempt settles the delivery), status, next, code, error, dead, finished, at, ms,
    # outcome, response.
    SETTLE = text(
        "WITH s AS MATERIALIZED (SELECT e.n, CAST(e.v->>0 AS BIGINT) AS id,"
        " CAST(e.v->>1 AS BOOLEAN) AS first, e.v->>2 AS status,"
        " CAST(e.v->>3 AS TIMESTAMPTZ) AS next, CAST(e.v->>4 AS INTEGER) AS code,"
        " e.v->>5 AS error, e.v->>6 AS dead, CAST(e.v->>7 AS TIMESTAMPTZ) AS finished,"
        " CAST(e.v->>8 AS TIMESTAMPTZ) AS at, CAST(e.v->>9 AS INTEGER) AS ms,"
        " e.v->>10 AS outcome, e.v->>11 AS response"
        " FROM json_array_elements(CAST(:b_rows AS JSON)) WITH ORDINALITY AS e(v, n)),"
        " attempts AS (INSERT INTO delivery_attempt (delivery_id, attempted_at,"
        " duration_ms, outcome, status_code, error, response, worker)"
        " SELECT s.id, s.at, s.ms, s.outcome, s.code, s.error, s.response, :b_worker"
        " FROM s ORDER BY s.n)"
        " UPDATE delivery SET status = s.status, attempts = delivery.attempts + 1,"
        " next_attempt_at = s.next, last_status = s.code, last_error = s.error,"
        " dead_reason = s.dead, finished_at = s.finished,"
        " lease_owner = NULL, lease_until = NULL, updated_at = s.at"
        " FROM s WHERE s.first AND delivery.id = s.id AND delivery.lease_owner = :b_owner"
        " AND delivery.status = 'inflight'"
    )
