"""The login_event rows of a batch's new events, each address located once per batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from globeguard.adapters.geoip.port import GeoLocator, GeoReason, GeoResult
from globeguard.travel.ingest.events import ReportedLogin
from globeguard.travel.ingest.report import IngestReport
from globeguard.travel.replay import place_from_columns
from globeguard.travel.service import LAST_ARRIVAL, geo_columns
from globeguard.travel.timeline import Place, TravelEvent

# Every geo column, in every row: a multi-row INSERT needs one key set.
GEO_COLUMNS = (
    "latitude",
    "longitude",
    "accuracy_radius_km",
    "country_iso",
    "country_geoname_id",
    "subdivision_iso",
    "subdivision_name",
    "subdivision_geoname_id",
    "city_name",
    "city_geoname_id",
    "time_zone",
    "asn",
    "geo_reason",
)


class Fresh(NamedTuple):
    """A line that is not a replay: its event, the uuid it is stored under, and its digest."""

    line: int
    event: ReportedLogin
    event_uuid: str
    digest: str


@dataclass(frozen=True, slots=True)
class Located:
    """What one address puts in a row (its geo columns, and the columns every new row
    starts empty) and the place grading sees."""

    columns: dict[str, Any]
    place: Place | None


@dataclass(frozen=True, slots=True)
class NewRows:
    """A batch's rows, and per normalised address where it is."""

    rows: list[dict[str, Any]]
    places: dict[str, Place | None]

    def travel_events(self) -> list[TravelEvent]:
        """The rows as grading sees them, numbered in arrival order after every stored event
        (see `service.LAST_ARRIVAL`)."""
        places = self.places
        return [
            TravelEvent(
                row["event_uuid"],
                row["occurred_at"],
                arrival,
                places[row["ip"]],
                row["success"],
                row["ip"],
                row["asn"],
            )
            for arrival, row in enumerate(self.rows, start=LAST_ARRIVAL)
        ]


# Addresses whose columns, place and slot are remembered (~0.6 kB each, ~12 MB in all).
REMEMBERED = 20_000


class Locations:
    """`located` for each address, worked out once while the locator keeps answering with
    the same result (its cache hands out one object per address until it reloads): a stream
    meets the same addresses batch after batch."""

    def __init__(self, capacity: int = REMEMBERED) -> None:
        self._capacity = capacity
        self._known: dict[str, tuple[GeoResult, Located]] = {}

    def of(self, found: GeoResult) -> Located:
        known = self._known.get(found.ip)
        if known is not None and known[0] is found:
            return known[1]
        where = located(found)
        if len(self._known) >= self._capacity:
            del self._known[next(iter(self._known))]
        self._known[found.ip] = (found, where)
        return where


def located(found: GeoResult) -> Located:
    columns: dict[str, Any] = dict.fromkeys(GEO_COLUMNS)
    columns.update(geo_columns(found))
    columns.update(user_id=None, verdict=None, verdict_reasons=None, review=None, reviewed_at=None)
    place = place_from_columns(
        columns["located"],
        columns["latitude"],
        columns["longitude"],
        columns["accuracy_radius_km"],
        columns["country_iso"],
        columns["city_name"],
    )
    return Located(columns, place)


def new_rows(
    locator: GeoLocator,
    locations: Locations,
    fresh: Sequence[Fresh],
    source: str,
    report: IngestReport,
) -> NewRows:
    """The INSERT parameters of the locatable-or-not events; an address the GeoIP layer
    rejects is a line error."""
    if not fresh:
        return NewRows([], {})
    found = locator.locate_many(f.event.ip for f in fresh)
    by_address = _by_address(locations, found.values())
    received_at = datetime.now(UTC)
    rows = []
    for line, event, event_uuid, fingerprint in fresh:
        geo = found[event.ip]
        if geo.reason is GeoReason.INVALID:
            report.reject(line, f"ip: '{event.ip}' is not an IP address")
            continue
        # A copy of the address's columns, then the event's: a third of the cost of a
        # dict display of every column.
        row = by_address[geo.ip].columns.copy()
        row["event_uuid"] = event_uuid
        row["subject"] = event.subject
        row["source"] = source
        row["occurred_at"] = event.occurred_at
        row["received_at"] = received_at
        row["success"] = event.success
        row["failure_reason"] = event.failure_reason
        row["ip"] = geo.ip
        row["user_agent"] = event.user_agent
        row["body_digest"] = fingerprint
        rows.append(row)
    places = {address: where.place for address, where in by_address.items()}
    return NewRows(rows, places)


def _by_address(locations: Locations, results: Iterable[GeoResult]) -> dict[str, Located]:
    by_address: dict[str, Located] = {}
    for result in results:
        if result.ip not in by_address and result.reason is not GeoReason.INVALID:
            by_address[result.ip] = locations.of(result)
    return by_address
