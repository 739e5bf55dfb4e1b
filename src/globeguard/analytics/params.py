"""The analytics endpoints' query parameters, parsed into plain values. Pure.

Every endpoint takes the same filters (time range, outcome, verdict, user query) plus its own
options; a parameter an endpoint does not know, a repeated one, or a bad value raises
`ParamError` naming it, so a typo (`?verdcit=`) is a 400 that says so instead of a silently
unfiltered answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from globeguard.analytics.grid import MAX_ZOOM, BBox, Grid, choose_grid, parse_bbox
from globeguard.kit.limits import LimitError, check_date_bound

VERDICTS = ("none", "plausible", "unverifiable", "suspicious", "impossible")
FLAGGED = ("suspicious", "impossible")
TOP_LIMIT_MAX = 100
JOURNEYS_LIMIT_MAX = 1000
JOURNEYS_LIMIT_DEFAULT = 200
COMMON = frozenset({"from", "to", "outcome", "verdict", "q"})
HEATMAP = COMMON | {"zoom", "bbox", "by", "basis"}
TOP_LOCATIONS = COMMON | {"level", "limit", "by", "basis", "bbox"}
JOURNEYS = COMMON | {"limit"}


class ParamError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class Outcome(StrEnum):
    ANY = "any"
    SUCCESS = "success"
    FAILURE = "failure"


class Measure(StrEnum):
    EVENTS = "events"
    USERS = "users"


class Basis(StrEnum):
    ALL = "all"
    LAST_LOGIN = "last_login"


class PlaceLevel(StrEnum):
    COUNTRY = "country"
    REGION = "region"
    CITY = "city"


@dataclass(frozen=True, slots=True)
class Filters:
    """`first`/`last` are UTC days, inclusive; None is open. `verdicts` None is every
    verdict; `successes` the outcomes kept, as the `success` column's values."""

    first: date | None = None
    last: date | None = None
    successes: tuple[bool, ...] = (False, True)
    verdicts: tuple[str, ...] | None = None
    query: str | None = None

    @property
    def bounded(self) -> bool:
        return self.first is not None or self.last is not None


@dataclass(frozen=True, slots=True)
class HeatmapParams:
    filters: Filters
    grid: Grid
    by: Measure
    basis: Basis


@dataclass(frozen=True, slots=True)
class TopParams:
    filters: Filters
    level: PlaceLevel
    limit: int
    by: Measure
    basis: Basis
    bbox: BBox | None


@dataclass(frozen=True, slots=True)
class JourneyParams:
    filters: Filters
    limit: int


Pairs = Iterable[tuple[str, str]]
E = TypeVar("E", bound=StrEnum)


def _single(pairs: Pairs, allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise ParamError(
                name, f"unknown parameter; expected one of {', '.join(sorted(allowed))}"
            )
        if name in values:
            raise ParamError(name, "given more than once")
        values[name] = value
    return values


def _day(name: str, text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:  # a day's end is the next midnight, which 9999-12-31 does not have
        try:
            return check_date_bound(day)
        except LimitError as exc:
            raise ParamError(name, str(exc)) from None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(name, f"'{text[:40]}' is not a date (YYYY-MM-DD)") from None
    raise ParamError(name, "counts are kept per UTC day: give a date (YYYY-MM-DD), not a time")


def _choice(name: str, text: str | None, kind: type[E], default: E) -> E:
    if text is None:
        return default
    try:
        return kind(text)
    except ValueError:
        options = ", ".join(m.value for m in kind)
        raise ParamError(name, f"'{text[:40]}' is not one of {options}") from None


def _int(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ParamError(name, f"'{text[:40]}' is not a whole number") from None
    if not low <= value <= high:
        raise ParamError(name, f"must be between {low} and {high}")
    return value


def _verdicts(text: str | None, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    if text is None:
        return None
    chosen = tuple(dict.fromkeys(v.strip() for v in text.split(",")))
    for verdict in chosen:
        if verdict not in allowed:
            raise ParamError("verdict", f"'{verdict[:40]}' is not one of {', '.join(allowed)}")
    return chosen


def _outcome(text: str | None) -> tuple[bool, ...]:
    outcome = _choice("outcome", text, Outcome, Outcome.ANY)
    return {Outcome.ANY: (False, True), Outcome.SUCCESS: (True,), Outcome.FAILURE: (False,)}[
        outcome
    ]


def _filters(values: dict[str, str], verdicts: tuple[str, ...] = VERDICTS) -> Filters:
    first = _day("from", values["from"]) if "from" in values else None
    last = _day("to", values["to"]) if "to" in values else None
    if first and last and first > last:
        raise ParamError("from", "must not be after 'to'")
    query = values.get("q", "").strip() or None
    return Filters(
        first,
        last,
        _outcome(values.get("outcome")),
        _verdicts(values.get("verdict"), verdicts),
        query,
    )


def _basis(values: dict[str, str], filters: Filters) -> Basis:
    basis = _choice("basis", values.get("basis"), Basis, Basis.ALL)
    if basis is Basis.LAST_LOGIN and filters.successes == (False,):
        raise ParamError("basis", "last_login counts each user at their last successful sign-in")
    return basis


def heatmap_params(pairs: Pairs) -> HeatmapParams:
    values = _single(pairs, HEATMAP)
    filters = _filters(values)
    zoom = _int("zoom", values.get("zoom"), -1, 0, MAX_ZOOM) if "zoom" in values else None
    bbox = _bbox(values.get("bbox"))
    by = _choice("by", values.get("by"), Measure, Measure.EVENTS)
    return HeatmapParams(filters, choose_grid(zoom, bbox), by, _basis(values, filters))


def top_params(pairs: Pairs) -> TopParams:
    values = _single(pairs, TOP_LOCATIONS)
    filters = _filters(values)
    return TopParams(
        filters,
        _choice("level", values.get("level"), PlaceLevel, PlaceLevel.CITY),
        _int("limit", values.get("limit"), 10, 1, TOP_LIMIT_MAX),
        _choice("by", values.get("by"), Measure, Measure.EVENTS),
        _basis(values, filters),
        _bbox(values.get("bbox")),
    )


def journey_params(pairs: Pairs) -> JourneyParams:
    values = _single(pairs, JOURNEYS)
    filters = _filters(values, FLAGGED)
    limit = _int("limit", values.get("limit"), JOURNEYS_LIMIT_DEFAULT, 1, JOURNEYS_LIMIT_MAX)
    return JourneyParams(filters, limit)


def _bbox(text: str | None) -> BBox | None:
    if text is None:
        return None
    try:
        return parse_bbox(text)
    except ValueError as exc:
        raise ParamError("bbox", str(exc)) from None
