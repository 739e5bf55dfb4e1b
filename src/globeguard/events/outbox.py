"""Writing to the outbox, always inside the caller's transaction (never committed here).

A Core INSERT, not an ORM object left for the flush: the row needs no identity tracking. The
statement is compiled once (building it per call cost ~0.4 ms here, more than executing it),
and nothing in the transaction reads its result, so on the SQLite writer it rides along with
the transaction's next statement or its COMMIT (db.bulk.run_steps): a sign-in, a role change
or an API key's creation pays no hop to the writer thread for its audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from globeguard.db.bulk import BulkInsert
from globeguard.db.listen import PostgresListener
from globeguard.events.catalog import EventType
from globeguard.events.models import OutboxEvent
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import event_id

# Every column event_row gives a value; the sequence number is the database's.
_COLUMNS = (
    "event_id",
    "type",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "user_id",
    "actor",
    "payload",
    "occurred_at",
)
_INSERT = BulkInsert(cast(Table, OutboxEvent.__table__), _COLUMNS)
# On a session that wrote outbox rows, the set of their types, so its commit can wake the
# dispatcher for them.
WROTE_OUTBOX = "globeguard.wrote_outbox"
# On a session that changed which events subscriptions listen to.
CHANGED_SUBSCRIPTIONS = "globeguard.changed_subscriptions"
# PostgreSQL channel telling dispatchers (in every process, this one too) that events were
# committed. The payload is their types, comma-separated, so that each dispatcher's wake filter
# applies to them as to a commit of its own: with one NOTIFY carrying nothing, every sign-in
# woke every dispatcher for a whole delivery cycle (five statements) where no subscription
# listens to sign-ins. ANY_TYPE: subscriptions changed (read them again), or the types are too
# many for a payload.
CHANNEL = "globeguard_outbox"
ANY_TYPE = "*"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
# Half PostgreSQL's 8,000-byte payload limit: the catalogue's types all fit in ~700 bytes; a
# list longer than this means something unforeseen, and "everything" is always right.
_MAX_PAYLOAD = 4000


def event_row(
    type_: EventType,
    *,
    actor: str,
    aggregate_type: str,
    aggregate_id: str | None,
    user_id: uuid.UUID | None,
    payload: dict[str, Any],
    aggregate_version: int | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """One outbox row's values, with a fresh public id."""
    return {
        "event_id": event_id(),
        "type": str(type_),
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "aggregate_version": aggregate_version,
        "user_id": user_id,
        "actor": actor,
        "payload": payload,
        "occurred_at": occurred_at or utcnow(),
    }


async def record(
    session: AsyncSession,
    type_: EventType,
    *,
    actor: str,
    aggregate_type: str,
    aggregate_id: str | None,
    user_id: uuid.UUID | None,
    payload: dict[str, Any],
    aggregate_version: int | None = None,
) -> str:
    """Append one event; returns its public id."""
    row = event_row(
        type_,
        actor=actor,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        user_id=user_id,
        payload=payload,
        aggregate_version=aggregate_version,
    )
    await record_many(session, [row])
    return str(row["event_id"])


async def record_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append `event_row`s in one statement (a bulk import's batch). A row the database
    refuses fails the transaction's next statement or its COMMIT."""
    if rows:
        await _INSERT.run(session, rows)
        session.info.setdefault(WROTE_OUTBOX, set()).update(row["type"] for row in rows)


def note_subscriptions_changed(session: AsyncSession) -> None:
    """Tell the dispatcher, once this transaction commits, that what subscriptions listen to
    may have changed: its next wake looks whatever was written."""
    session.info[CHANGED_SUBSCRIPTIONS] = True


def install_commit_wakeup(
    session_class: type[Session],
    wake: Callable[[Collection[str] | None], None],
    *,
    notify: bool = False,
) -> None:
    """Call `wake` after each commit that wrote outbox rows, with their types (None when the
    transaction changed subscriptions): an in-process dispatcher then delivers at once
    instead of at its next poll. A rollback forgets it all. With `notify` (PostgreSQL) the
    transaction also NOTIFYs the same (CHANNEL), which PostgreSQL delivers only if it
    commits, so `globeguard worker` processes hear of it too: one statement per writing
    transaction, however many events it wrote."""

    if notify:

        @event.listens_for(session_class, "before_commit")
        def _notify(session: Session) -> None:
            types = session.info.get(WROTE_OUTBOX)
            changed = session.info.get(CHANGED_SUBSCRIPTIONS, False)
            if types or changed:
                payload = notify_payload(types or (), subscriptions_changed=changed)
                session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})

    @event.listens_for(session_class, "after_commit")
    def _committed(session: Session) -> None:
        types = session.info.pop(WROTE_OUTBOX, None)
        if session.info.pop(CHANGED_SUBSCRIPTIONS, False):
            wake(None)
        elif types:
            wake(types)

    @event.listens_for(session_class, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(WROTE_OUTBOX, None)
        session.info.pop(CHANGED_SUBSCRIPTIONS, None)


def notify_payload(types: Collection[str], *, subscriptions_changed: bool) -> str:
    """What a committing transaction NOTIFYs: the types of the events it wrote."""
    payload = ",".join(sorted(types))
    if subscriptions_changed or not payload or len(payload.encode()) > _MAX_PAYLOAD:
        return ANY_TYPE
    return payload


def heard_types(payload: str) -> frozenset[str] | None:
    """The event types a NOTIFY names; None: look at everything (and at subscriptions)."""
    if not payload or payload == ANY_TYPE:
        return None
    return frozenset(payload.split(","))


class OutboxListener(PostgresListener):
    """LISTENs for committed events and wakes the dispatcher with their types; after a
    reconnection it wakes it for anything (what was committed meanwhile), and the
    dispatcher's polling covers the gap."""

    def __init__(self, dsn: str, wake: Callable[[Collection[str] | None], None]) -> None:
        super().__init__(
            dsn,
            CHANNEL,
            lambda payload: wake(heard_types(payload)),
            lambda: wake(None),
            "outbox listener",
        )
