"""What one stored login event adds to the rollups. Pure.

`facts_of` reads the columns of a `login_event` row (as written, or as read back) into the
few values the rollups are keyed by; `day_counts` and `subject_counts` turn a batch of them
into counts per rollup row, summed in memory so a batch of a thousand events from a few
hundred places costs a few hundred upserts, not a thousand times nine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from globeguard.analytics.grid import FINEST_EXPONENT, ROW_STRIDE, STORED_EXPONENTS, cell_key
from globeguard.analytics.models import CITY_DIM, COUNTRY_DIM, REGION_DIM
from globeguard.kit.clock import as_utc

NO_CELL = -1
NO_PLACE = 0
NO_VERDICT = "none"
FLAGGED = frozenset({"suspicious", "impossible"})

DayKey = tuple[date, int, int, bool, str]
SubjectKey = tuple[str, date, int, int, int, int, bool, str]


@dataclass(frozen=True, slots=True)
class Facts:
    subject: str
    event_uuid: str
    day: date
    success: bool
    verdict: str
    lat: float | None
    lon: float | None
    country_id: int
    region_id: int
    city_id: int
    # The finest grid cell (see grid), or NO_CELL without coordinates.
    cell: int = NO_CELL

    @property
    def located(self) -> bool:
        return self.cell != NO_CELL

    @property
    def has_place(self) -> bool:
        return self.located or bool(self.country_id or self.region_id or self.city_id)


def facts_of(row: Mapping[str, Any]) -> Facts:
    lat, lon = row.get("latitude"), row.get("longitude")
    located = bool(row.get("located", True)) and lat is not None and lon is not None
    return Facts(
        subject=row["subject"],
        event_uuid=row["event_uuid"],
        day=as_utc(row["occurred_at"]).date(),
        success=bool(row["success"]),
        verdict=row.get("verdict") or NO_VERDICT,
        lat=float(lat) if located and lat is not None else None,
        lon=float(lon) if located and lon is not None else None,
        country_id=row.get("country_geoname_id") or NO_PLACE,
        region_id=row.get("subdivision_geoname_id") or NO_PLACE,
        city_id=row.get("city_geoname_id") or NO_PLACE,
        cell=cell_key(float(lat), float(lon), FINEST_EXPONENT)
        if located and lat is not None and lon is not None
        else NO_CELL,
    )


def with_verdict(facts: Facts, verdict: str | None) -> Facts:
    return replace(facts, verdict=verdict or NO_VERDICT)


def dimension_keys(facts: Facts) -> list[tuple[int, int]]:
    """(dimension, key) of every rollup row the event counts in."""
    keys = []
    if facts.cell != NO_CELL:
        # Cells nest (see grid): each stored level's cell is the finest one divided down.
        row, column = divmod(facts.cell, ROW_STRIDE)
        for level, exponent in enumerate(STORED_EXPONENTS):
            shift = exponent - FINEST_EXPONENT
            keys.append((level, (row >> shift) * ROW_STRIDE + (column >> shift)))
    for dim, place in ((COUNTRY_DIM, facts.country_id), (REGION_DIM, facts.region_id)):
        if place:
            keys.append((dim, place))
    if facts.city_id:
        keys.append((CITY_DIM, facts.city_id))
    return keys


def day_counts(items: Iterable[tuple[Facts, int]]) -> Counter[DayKey]:
    """Counts per day-rollup row of `(facts, +1 | -1)` items; rows that sum to 0 are kept
    out (an event and its retraction in one batch change nothing)."""
    counts: Counter[DayKey] = Counter()
    for facts, sign in items:
        for dim, key in dimension_keys(facts):
            counts[(facts.day, dim, key, facts.success, facts.verdict)] += sign
    return Counter({k: v for k, v in counts.items() if v})


def subject_counts(items: Iterable[tuple[Facts, int]]) -> Counter[SubjectKey]:
    counts: Counter[SubjectKey] = Counter()
    for facts, sign in items:
        if not facts.has_place:
            continue
        key = (
            facts.subject,
            facts.day,
            facts.cell,
            facts.country_id,
            facts.region_id,
            facts.city_id,
            facts.success,
            facts.verdict,
        )
        counts[key] += sign
    return Counter({k: v for k, v in counts.items() if v})


def latest_success(rows: Iterable[tuple[Facts, Mapping[str, Any]]]) -> dict[str, Mapping[str, Any]]:
    """Per subject, the row of its latest successful located event in the batch (the later
    of two at the same instant: the one written last)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for facts, row in rows:
        if not (facts.success and facts.located):
            continue
        current = latest.get(facts.subject)
        if current is None or as_utc(row["occurred_at"]) >= as_utc(current["occurred_at"]):
            latest[facts.subject] = row
    return latest
