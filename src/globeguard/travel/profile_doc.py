"""A login profile's storage: the JSON shapes of its places, place memories and events, with
exact ISO times (grading compares instants). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from globeguard.travel.profile_memory import PROFILE_ARRIVAL, PlaceMemory
from globeguard.travel.timeline import Place, TravelEvent


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def place_doc(place: Place | None) -> list[Any] | None:
    if place is None:
        return None
    return [place.lat, place.lon, place.radius_km, place.country, place.city]


def place_of(doc: list[Any] | None) -> Place | None:
    return None if doc is None else Place(*doc)


def memory_doc(memory: PlaceMemory) -> list[Any]:
    return [
        place_doc(memory.place),
        memory.first_seen.isoformat(),
        memory.last_seen.isoformat(),
        memory.count,
        memory.days,
        memory.last_day,
        memory.trusted,
        memory.contested,
    ]


def memory_of(doc: list[Any]) -> PlaceMemory:
    place, first, last, count, days, last_day, trusted, contested = doc
    return PlaceMemory(
        Place(*place),
        datetime.fromisoformat(first),
        datetime.fromisoformat(last),
        int(count),
        int(days),
        int(last_day),
        bool(trusted),
        bool(contested),
    )


def event_doc(event: TravelEvent | None) -> list[Any] | None:
    if event is None:
        return None
    return [
        event.key,
        event.occurred_at.isoformat(),
        event.success,
        event.ip,
        place_doc(event.place),
        event.asn,
        event.review,
    ]


def event_of(doc: list[Any] | None) -> TravelEvent | None:
    if doc is None:
        return None
    key, at, success, ip, place, asn, review = doc
    return TravelEvent(
        key,
        datetime.fromisoformat(at),
        PROFILE_ARRIVAL,
        place_of(place),
        success,
        ip,
        asn,
        review,
    )
