"""Keeping the analytics rollups current, and ageing them out.

`RollupObserver` is told of every stored login event and every changed verdict by both
recording paths (one at a time and bulk), inside the transaction that stores them, so the
rollups commit or roll back with the events: they never count an event that is not stored.

Whose events: an event belongs to a Globeguard user when it carries `user_id`, or when its
subject is a user's id — the subject Globeguard gives its own users' sign-ins, and what a
bulk report about them carries (bulk ingestion does not set `user_id`). One query per batch
checks which uuid-shaped subjects are users; other subjects cost nothing.

Retention: rollups are per UTC day and kept for `AnalyticsSettings.retention` (90 days by
default, as long as the raw events), one day per transaction, oldest first; retiring a day
subtracts it from the all-days totals in the same transaction, so the totals always equal
the sum of the day rows. Counts of an erased user's events stay in the global rollups as
anonymous numbers until their day ages out; their per-user rows go with the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.analytics.facts import (
    FLAGGED,
    Facts,
    Tallies,
    facts_of,
    latest_success,
    tallies,
    with_verdict,
)
from globeguard.analytics.models import CITY_DIM, COUNTRY_DIM, REGION_DIM
from globeguard.analytics.repository import AnalyticsRepository
from globeguard.db.session import Database
from globeguard.kit.clock import as_utc, utcnow
from globeguard.kit.periodic import every
from globeguard.settings import AnalyticsSettings
from globeguard.travel.observers import VerdictChange


@dataclass(frozen=True, slots=True)
class Changes:
    """What a batch of new events adds to the rollups: the repository's arguments."""

    counts: Tallies
    owners: dict[str, uuid.UUID]
    places: list[dict[str, Any]]
    last_logins: list[dict[str, Any]]
    flagged: list[dict[str, Any]]


class RollupObserver:
    async def inserted(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        pairs = [(facts_of(row), row) for row in rows]
        owners = await _owners(AnalyticsRepository(session), pairs)
        await self.apply(session, self._changes(pairs, owners))

    def summarise(
        self, rows: Sequence[Mapping[str, Any]], owners: Mapping[str, uuid.UUID]
    ) -> Changes:
        return self._changes([(facts_of(row), row) for row in rows], owners)

    @staticmethod
    def _changes(
        pairs: Sequence[tuple[Facts, Mapping[str, Any]]], owners: Mapping[str, uuid.UUID]
    ) -> Changes:
        subjects = {f.subject for f, _ in pairs}
        return Changes(
            counts=tallies((f, 1) for f, _ in pairs),
            owners={s: u for s, u in owners.items() if s in subjects},
            places=_places(pairs),
            last_logins=[_last_login(f, row, owners) for f, row in _latest(pairs).values()],
            flagged=[
                j for f, row in pairs if f.verdict in FLAGGED if (j := _journey(f, row, owners))
            ],
        )

    async def apply(self, session: AsyncSession, summary: Changes) -> None:
        await AnalyticsRepository(session).note_batch(
            summary.counts, summary.owners, summary.places, summary.last_logins, summary.flagged
        )

    async def regraded(self, session: AsyncSession, changes: Sequence[VerdictChange]) -> None:
        """Move each changed event's counts from its old verdict and outcome to its new
        ones."""
        if not changes:
            return
        repo = AnalyticsRepository(session)
        by_id = {c.row_id: c for c in changes}
        rows = [dict(r._mapping) for r in await repo.login_events(list(by_id))]
        pairs = [(facts_of(row), row) for row in rows]
        users = await _owners(repo, pairs)
        moves: list[tuple[Facts, int]] = []
        for facts, row in pairs:
            change = by_id[row["id"]]
            moves += [(_as_counted(facts, change), -1), (with_verdict(facts, change.new), 1)]
        await repo.add_counts(tallies(moves), users)
        await repo.set_last_login_verdicts(
            {row["event_uuid"]: by_id[row["id"]].new for row in rows}
        )
        await _last_logins_after_outcomes(repo, pairs, by_id, users)
        flagged = [(f, row) for f, row in pairs if by_id[row["id"]].new in FLAGGED]
        await repo.note_flagged([j for f, row in flagged if (j := _journey(f, row, users))])
        await repo.unflag(
            [row["event_uuid"] for row in rows if by_id[row["id"]].new not in FLAGGED]
        )


def _as_counted(facts: Facts, change: VerdictChange) -> Facts:
    """The event as the rollups counted it before `change`."""
    before = with_verdict(facts, change.old)
    if change.old_success is None:
        return before
    return replace(before, success=change.old_success)


async def _last_logins_after_outcomes(
    repo: AnalyticsRepository,
    pairs: Sequence[tuple[Facts, Mapping[str, Any]]],
    by_id: Mapping[int, VerdictChange],
    users: Mapping[str, uuid.UUID],
) -> None:
    """An event that became a success may be its subject's last login now; one that stopped
    being a success hands that place back to the subject's latest success before it."""
    changed = [
        (f, row) for f, row in pairs if by_id[row["id"]].old_success not in (None, f.success)
    ]
    lost = [f.event_uuid for f, _ in changed if not f.success]
    if lost:
        await repo.forget_last_logins(lost)
        subjects = {f.subject for f, _ in changed if not f.success}
        stored = [dict(r._mapping) for r in await repo.latest_successes(subjects)]
        changed += [(facts_of(row), row) for row in stored]
    latest = [_last_login(f, row, users) for f, row in _latest(changed).values()]
    if latest:
        await repo.note_last_logins(latest)


async def _owners(
    repo: AnalyticsRepository, pairs: Sequence[tuple[Facts, Mapping[str, Any]]]
) -> dict[str, uuid.UUID]:
    """Subject → the Globeguard user whose events they are (see the module doc)."""
    owners: dict[str, uuid.UUID] = {}
    candidates: dict[str, uuid.UUID] = {}
    for facts, row in pairs:
        if row.get("user_id") is not None:
            owners[facts.subject] = row["user_id"]
        elif facts.subject not in owners and (as_id := _uuid(facts.subject)) is not None:
            candidates[facts.subject] = as_id
    if candidates:
        users = await repo.users_among(candidates.values())
        owners.update({s: u for s, u in candidates.items() if u in users})
    return owners


def _uuid(text: str) -> uuid.UUID | None:
    if len(text) not in (32, 36):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _latest(
    pairs: Sequence[tuple[Facts, Mapping[str, Any]]],
) -> dict[str, tuple[Facts, Mapping[str, Any]]]:
    facts_by_uuid = {f.event_uuid: f for f, _ in pairs}
    return {
        subject: (facts_by_uuid[row["event_uuid"]], row)
        for subject, row in latest_success(pairs).items()
    }


def _last_login(
    facts: Facts, row: Mapping[str, Any], users: Mapping[str, uuid.UUID]
) -> dict[str, Any]:
    return {
        "subject": facts.subject,
        "user_id": users.get(facts.subject),
        "event_uuid": facts.event_uuid,
        "occurred_at": as_utc(row["occurred_at"]),
        "day": facts.day,
        "cell": facts.cell,
        "country_id": facts.country_id,
        "region_id": facts.region_id,
        "city_id": facts.city_id,
        "verdict": facts.verdict,
    }


def _journey(
    facts: Facts, row: Mapping[str, Any], users: Mapping[str, uuid.UUID]
) -> dict[str, Any] | None:
    """The flagged journey ending at this event, from its verdict's reasons; None when the
    reasons do not describe a measured journey."""
    reasons = row.get("verdict_reasons") or {}
    origin, destination = reasons.get("origin"), reasons.get("destination")
    if not origin or not destination or reasons.get("distance_km") is None:
        return None
    return {
        "event_uuid": facts.event_uuid,
        "subject": facts.subject,
        "user_id": users.get(facts.subject),
        "occurred_at": as_utc(row["occurred_at"]),
        "success": facts.success,
        "verdict": facts.verdict,
        "from_lat": origin["lat"],
        "from_lon": origin["lon"],
        "from_city": origin.get("city"),
        "from_country": origin.get("country"),
        "to_lat": destination["lat"],
        "to_lon": destination["lon"],
        "to_city": destination.get("city"),
        "to_country": destination.get("country"),
        "distance_km": reasons["distance_km"],
        "elapsed_seconds": reasons.get("elapsed_seconds") or 0.0,
        "speed_mph": reasons.get("speed_mph") or 0.0,
    }


def _places(pairs: Sequence[tuple[Facts, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per place seen in the batch, with its labels and its latest time."""
    places: dict[tuple[int, int], dict[str, Any]] = {}
    for facts, row in pairs:
        seen = as_utc(row["occurred_at"])
        country, region = row.get("country_iso"), row.get("subdivision_iso")
        region_name = row.get("subdivision_name")
        for dim, geoname_id, city in (
            (COUNTRY_DIM, facts.country_id, None),
            (REGION_DIM, facts.region_id, None),
            (CITY_DIM, facts.city_id, row.get("city_name")),
        ):
            if not geoname_id:
                continue
            current = places.get((dim, geoname_id))
            if current is not None:
                current["last_seen_at"] = max(current["last_seen_at"], seen)
                continue
            places[(dim, geoname_id)] = {
                "dim": dim,
                "geoname_id": geoname_id,
                "country_iso": country,
                "subdivision_iso": region if dim != COUNTRY_DIM else None,
                "subdivision_name": region_name if dim != COUNTRY_DIM else None,
                "city_name": city,
                "latitude": facts.lat,
                "longitude": facts.lon,
                "last_seen_at": seen,
            }
    return list(places.values())


async def purge_once(db: Database, settings: AnalyticsSettings, now: datetime | None = None) -> int:
    """Retire every rollup day before `now - retention`, one day per transaction (a failure
    half-way keeps what was done; the next run carries on). Returns the day rows deleted."""
    instant = (now or utcnow()) - settings.retention
    cutoff = instant.date()
    deleted = 0
    while True:
        async with db.transaction() as session:
            repo = AnalyticsRepository(session)
            oldest = await repo.oldest_day()
            if oldest is None or oldest >= cutoff:
                await repo.purge_before(cutoff, instant)
                return deleted
            deleted += await repo.retire_day(oldest)


async def retention_loop(db: Database, settings: AnalyticsSettings) -> None:
    what = f"retiring analytics rollups older than {settings.retention}"
    await every(settings.retention_interval, lambda: purge_once(db, settings), what)
