"""What one stored login event adds to the rollups. Pure.

`facts_of` reads the columns of a `login_event` row (as written, or as read back) into the
few values the rollups are keyed by; `day_counts` and `subject_counts` turn a batch of them
into a vector of counts per rollup row (one count per `models.COUNTS` column), summed in
memory so a batch of a thousand events from a few hundred places costs a few hundred
upserts, not a thousand times nine.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from operator import add
from typing import Any, TypeVar

from globeguard.analytics.grid import FINEST_EXPONENT, ROW_STRIDE, STORED_EXPONENTS, cell_key
from globeguard.analytics.models import CITY_DIM, COUNTRY_DIM, COUNTS, REGION_DIM, count_position
from globeguard.kit.clock import as_utc

NO_CELL = -1
NO_PLACE = 0
NO_VERDICT = "none"
FLAGGED = frozenset({"suspicious", "impossible"})

# (day, dimension, key) and (subject, day, cell, country, region, city): the primary keys.
DayKey = tuple[date, int, int]
SubjectKey = tuple[str, date, int, int, int, int]
# One count per `models.COUNTS` column, in that order.
Counts = tuple[int, ...]
K = TypeVar("K", bound=Hashable)


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

    @property
    def position(self) -> int:
        """The count column the event adds to: an index into `Counts`."""
        return count_position(self.success, self.verdict)


def facts_of(row: Mapping[str, Any]) -> Facts:
    lat, lon = row.get("latitude"), row.get("longitude")
    located = bool(row.get("located", True)) and lat is not None and lon is not None
    return Facts(
        subject=row["subject"],
        event_uuid=row["event_uuid"],
        day=_day_of(row["occurred_at"]),
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


# One date object per day: the tallies' keys then share it, so a pickled batch (the demo
# seeder passes them between processes) holds each day once instead of once per key.
_DAYS: dict[date, date] = {}
_MAX_DAYS = 4096


def _day_of(at: datetime) -> date:
    day = as_utc(at).date()
    shared = _DAYS.get(day)
    if shared is None:
        if len(_DAYS) >= _MAX_DAYS:
            _DAYS.clear()
        shared = _DAYS[day] = day
    return shared


def with_verdict(facts: Facts, verdict: str | None) -> Facts:
    return replace(facts, verdict=verdict or NO_VERDICT)


def dimension_keys(facts: Facts) -> tuple[tuple[int, int], ...]:
    """(dimension, key) of every rollup row the event counts in."""
    return _place_keys((facts.cell, facts.country_id, facts.region_id, facts.city_id))


def _place_keys(place: tuple[int, int, int, int]) -> tuple[tuple[int, int], ...]:
    keys = _KEYS.get(place)
    if keys is None:
        if len(_KEYS) >= _MAX_PLACES:
            _KEYS.clear()
        keys = _KEYS[place] = _keys_of(*place)
    return keys


# The keys of each place met lately: a batch meets the same few hundred places again and again
# (~1 µs each to work out, a tenth of that to find).
_KEYS: dict[tuple[int, int, int, int], tuple[tuple[int, int], ...]] = {}
_MAX_PLACES = 50_000


def _keys_of(
    cell: int, country_id: int, region_id: int, city_id: int
) -> tuple[tuple[int, int], ...]:
    keys = []
    if cell != NO_CELL:
        # Cells nest (see grid): each stored level's cell is the finest one divided down.
        row, column = divmod(cell, ROW_STRIDE)
        for level, exponent in enumerate(STORED_EXPONENTS):
            shift = exponent - FINEST_EXPONENT
            keys.append((level, (row >> shift) * ROW_STRIDE + (column >> shift)))
    for dim, place in ((COUNTRY_DIM, country_id), (REGION_DIM, region_id)):
        if place:
            keys.append((dim, place))
    if city_id:
        keys.append((CITY_DIM, city_id))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Tallies:
    """Every count a batch of `(facts, +1 | -1)` items changes: per day and all days, in the
    global rollups and per subject."""

    days: dict[DayKey, Counts]
    totals: dict[tuple[int, int], Counts]
    subject_days: dict[SubjectKey, Counts]
    subject_totals: dict[tuple[str, int, int, int, int], Counts]


def tallies(items: Iterable[tuple[Facts, int]]) -> Tallies:
    listed = list(items)
    days, subject_days = day_counts(listed), subject_counts(listed)
    return Tallies(
        days,
        without_day(days, 0),
        subject_days,
        without_day(subject_days, 1),
    )


def day_counts(items: Iterable[tuple[Facts, int]]) -> dict[DayKey, Counts]:
    """Counts per day-rollup row of `(facts, +1 | -1)` items; a row whose every count sums
    to 0 is kept out (an event and its retraction in one batch change nothing). Events of
    the same day, place and count column are summed first, then spread over the place's
    rows: a batch holds far fewer of those than events."""
    grouped: dict[tuple[date, tuple[int, int, int, int], int], int] = {}
    for facts, sign in items:
        group = (
            facts.day,
            (facts.cell, facts.country_id, facts.region_id, facts.city_id),
            facts.position,
        )
        grouped[group] = grouped.get(group, 0) + sign
    return _tally(
        ((day, dim, key), position, amount)
        for (day, place, position), amount in grouped.items()
        for dim, key in _place_keys(place)
    )


def subject_counts(items: Iterable[tuple[Facts, int]]) -> dict[SubjectKey, Counts]:
    return _tally(
        (_subject_key(facts), facts.position, sign) for facts, sign in items if facts.has_place
    )


def _subject_key(facts: Facts) -> SubjectKey:
    return (
        facts.subject,
        facts.day,
        facts.cell,
        facts.country_id,
        facts.region_id,
        facts.city_id,
    )


def without_day(counts: Mapping[Any, Counts], at: int) -> dict[Any, Counts]:
    """Day counts summed over their days (the key's item `at`): what they add to the
    all-days totals. Sums that are all 0 are kept out."""
    sums: dict[tuple[Any, ...], Counts] = {}
    for key, amounts in counts.items():
        rest = key[:at] + key[at + 1 :]
        total = sums.get(rest)
        sums[rest] = amounts if total is None else tuple(map(add, total, amounts))
    return _shared({key: total for key, total in sums.items() if any(total)})


def _tally(items: Iterable[tuple[K, int, int]]) -> dict[K, Counts]:
    """Sums `(key, position, amount)` items into a count vector per key, leaving out the
    keys whose counts are all 0."""
    sums: dict[K, list[int]] = {}
    for key, position, amount in items:
        counts = sums.get(key)
        if counts is None:
            counts = sums[key] = [0] * len(COUNTS)
        counts[position] += amount
    return _shared({key: tuple(counts) for key, counts in sums.items() if any(counts)})


def _shared(counts: dict[K, Counts]) -> dict[K, Counts]:
    """The same counts with equal vectors as one object: most are a single 1 or -1, and a
    pickled batch then holds each once."""
    vectors: dict[Counts, Counts] = {}
    return {key: vectors.setdefault(amounts, amounts) for key, amounts in counts.items()}


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
