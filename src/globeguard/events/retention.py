"""Retention of the outbox: events older than `DeliverySettings.outbox_retention` (14 days,
SQS's longest) are deleted with their settled deliveries, a small batch per transaction, in
the background of every process that runs the dispatcher. An event some subscriber is still
owed stays until it is settled."""

from __future__ import annotations

from datetime import datetime

from globeguard.db.session import Database
from globeguard.events.delivery.repository import DeliveryRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.periodic import every
from globeguard.settings import DeliverySettings


async def purge_once(db: Database, settings: DeliverySettings, now: datetime | None = None) -> int:
    """Each batch commits on its own: no lock is held for the whole purge (on SQLite the only
    write lock), and a failure half-way keeps what was already deleted."""
    cutoff = (now or utcnow()) - settings.outbox_retention
    total = 0
    while True:
        async with db.transaction() as session:
            deleted = await DeliveryRepository(session).purge_outbox_batch(
                cutoff, settings.retention_batch
            )
        total += deleted
        if deleted < settings.retention_batch:
            return total


async def retention_loop(db: Database, settings: DeliverySettings) -> None:
    what = f"purging outbox events older than {settings.outbox_retention}"
    await every(settings.retention_interval, lambda: purge_once(db, settings), what)
