"""Retention of login events: delete those older than `TravelSettings.retention`, a small
batch per transaction, and keep doing it in the background of every serving process."""

from __future__ import annotations

from datetime import datetime

from globeguard.db.session import Database
from globeguard.kit.clock import utcnow
from globeguard.kit.periodic import every
from globeguard.settings import TravelSettings
from globeguard.travel.repository import LoginEventRepository


async def purge_once(db: Database, settings: TravelSettings, now: datetime | None = None) -> int:
    """Delete every event that occurred before `now - retention`; returns how many. Each batch
    commits on its own so no lock is held for the whole purge, and a failure half-way keeps
    what was already deleted (the next run carries on from there)."""
    cutoff = (now or utcnow()) - settings.retention
    batch = settings.retention_batch
    total = 0
    while True:
        async with db.transaction() as session:
            deleted = await LoginEventRepository(session).purge_batch(cutoff, batch)
        total += deleted
        # A short batch means nothing older is left (events arriving now are newer).
        if deleted < batch:
            return total


async def retention_loop(db: Database, settings: TravelSettings) -> None:
    what = f"purging login events older than {settings.retention}"
    await every(settings.retention_interval, lambda: purge_once(db, settings), what)
