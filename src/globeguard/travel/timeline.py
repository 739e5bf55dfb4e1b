"""A subject's events in event-time order: the inputs, the total order, neighbours, history.

Events are totally ordered by ``(occurred_at, arrival_seq)``: event time first, and the order
of arrival only among events of the same instant. The preceding neighbour of X is the greatest
event below X in that order and the subsequent neighbour the least above it, so two sign-ins in
the same second are real neighbours of each other, and a late-arriving earlier event slots in
by its time, never at the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise


@dataclass(frozen=True, slots=True)
class Place:
    """Where an IP was located. ``radius_km`` is the GeoIP accuracy radius (MaxMind's
    ``accuracy_radius``, 67 % confidence); None where the database has none (DB-IP)."""

    lat: float
    lon: float
    radius_km: float | None = None
    country: str | None = None
    city: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"latitude out of range: {self.lat}")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"longitude out of range: {self.lon}")
        if self.radius_km is not None and not (
            math.isfinite(self.radius_km) and self.radius_km >= 0
        ):
            raise ValueError(f"accuracy radius must be a finite km >= 0: {self.radius_km}")


OrderKey = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class TravelEvent:
    """One sign-in of one subject. ``arrival_seq`` must be unique per subject and increase with
    arrival (a database id does); ``place`` is None when the IP could not be located; ``asn``
    is the network's autonomous system when an ASN database knows it; ``review`` an admin's
    word on it ("safe" or "compromised"), if any."""

    key: str
    occurred_at: datetime
    arrival_seq: int
    place: Place | None = None
    success: bool = True
    ip: str | None = None
    asn: int | None = None
    review: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")

    @property
    def order(self) -> OrderKey:
        return (self.occurred_at, self.arrival_seq)


@dataclass(frozen=True, slots=True)
class Neighbours:
    preceding: TravelEvent | None = None
    subsequent: TravelEvent | None = None


def order_key(event: TravelEvent) -> OrderKey:
    return event.order


def find_neighbours(events: Iterable[TravelEvent], current: TravelEvent) -> Neighbours:
    """The nearest events before and after ``current`` in event order. ``events`` may include
    ``current`` itself (it is skipped) and may come in any order."""
    here = current.order
    preceding: TravelEvent | None = None
    subsequent: TravelEvent | None = None
    for event in events:
        if event.order < here and (preceding is None or event.order > preceding.order):
            preceding = event
        elif event.order > here and (subsequent is None or event.order < subsequent.order):
            subsequent = event
    return Neighbours(preceding, subsequent)


def sort_timeline(events: Iterable[TravelEvent]) -> list[TravelEvent]:
    """Events in event order; two events with one order key are a caller bug."""
    ordered = sorted(events, key=order_key)
    for before, after in pairwise(ordered):
        if before.order == after.order:
            raise ValueError(f"events {before.key!r} and {after.key!r} share an order key")
    return ordered


@dataclass(frozen=True, slots=True)
class History:
    """What a subject's sign-ins *before* one event (in event order) tell the false-positive
    controls: how many succeeded, when the first did, the places known at that event's time
    and the networks (ASNs) the subject proved (see ``profile``)."""

    successes: int = 0
    first_success_at: datetime | None = None
    known_places: tuple[Place, ...] = ()
    known_networks: frozenset[int] = frozenset()
