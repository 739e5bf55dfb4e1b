"""A login profile's storage: the JSON shapes of its places, place memories and events, with
exact ISO times (grading compares instants). Pure.

The shapes hold their times as datetimes, and orjson writes each as `isoformat()` would (the
times are UTC: see kit.limits.check_time; an offset with seconds, which orjson cuts to the
minute, never reaches a profile). Calling isoformat for each time was ~7 % of the event loop's
CPU in a bulk batch: a stored profile holds up to two times per remembered place and one per
network, and every batch writes back the profile of each subject it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from globeguard.travel.profile_memory import PROFILE_ARRIVAL, PlaceMemory
from globeguard.travel.timeline import Place, TravelEvent


def place_doc(place: Place | None) -> list[Any] | None:
    if place is None:
        return None
    return [place.lat, place.lon, place.radius_km, place.country, place.city]


def place_of(doc: list[Any] | None) -> Place | None:
    return None if doc is None else Place(*doc)


def memory_doc(memory: PlaceMemory) -> list[Any]:
    return [
        place_doc(memory.place),
        memory.first_seen,
        memory.last_seen,
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
        event.occurred_at,
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
