"""Retention of login events: delete those older than `TravelSettings.retention`, a small
batch per transaction, and keep doing it in the background of every serving process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    total = await _in_batches(db, settings.retention_batch, lambda r, n: r.purge_batch(cutoff, n))
    # A profile whose newest event is gone describes only purged events (places, times).
    await _in_batches(db, settings.retention_batch, lambda r, n: r.purge_profiles_batch(cutoff, n))
    return total


async def _in_batches(
    db: Database, batch: int, purge: Callable[[LoginEventRepository, int], Awaitable[int]]
) -> int:
    total = 0
    while True:
        async with db.transaction() as session:
            deleted = await purge(LoginEventRepository(session), batch)
        total += deleted
        # A short batch means nothing older is left (what arrives now is newer).
        if deleted < batch:
            return total


async def retention_loop(db: Database, settings: TravelSettings) -> None:
    what = f"purging login events older than {settings.retention}"
    await every(settings.retention_interval, lambda: purge_once(db, settings), what)
