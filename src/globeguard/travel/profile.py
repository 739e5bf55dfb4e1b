"""A subject's login profile: everything grading needs of its past, in one small value. Pure.

Grading a login reads the subject's past: the anchor (the last *trusted* success), what the
false-positive controls need (how many successes, when the first was, the places and networks
the subject has proven) and, for the Superman view, the latest event of any outcome. A profile
holds those facts and moves forward one event at a time (``Profile.after``), so a login later
than all of its subject's stored ones — the common case — is judged from one row. A login
arriving before the subject's newest stored event is judged from a profile rebuilt from the
stored events (the same fold over the same events, see ``service.replayed_profiles``).

Trust. A success is *trusted* when the user proved it: its verdict is not flagged (suspicious
or impossible), or an admin reviewed it "safe"; never when reviewed "compromised". Only a
trusted success becomes the anchor, so an attacker's flagged sign-in is never what the next
sign-in is measured from. Places are remembered per cluster (successes within
``known_location_radius_km`` of the cluster's first place), with counts, first and last seen
and the distinct days seen. A place is *known* when a trusted success proved it, or when it
recurred on ``known_place_days`` distinct days and no success there was reviewed
"compromised"; places and networks unused for ``known_place_memory`` are forgotten. A network
(ASN) is known once a trusted success came through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.geo_math import haversine_km
from globeguard.travel.grading import Verdict, judge_lazily
from globeguard.travel.profile_doc import event_doc, event_of, memory_doc, memory_of
from globeguard.travel.profile_memory import (
    COMPROMISED,
    FLAGGED,
    PROFILE_ARRIVAL,
    SAFE,
    PlaceMemory,
    first_memory,
    is_trusted,
)
from globeguard.travel.timeline import History, Place, TravelEvent, sort_timeline

# Re-exported: what callers of the profile name.
__all__ = [
    "COMPROMISED",
    "FLAGGED",
    "MAX_NETWORKS",
    "MAX_PLACES",
    "PROFILE_ARRIVAL",
    "SAFE",
    "Context",
    "PlaceMemory",
    "Profile",
    "is_new_country",
    "is_trusted",
    "judge_timeline",
]

# A profile document of another shape (an older release's) is not read: the subject's profile
# is rebuilt from its stored events instead.
DOC_VERSION = 2
# Bounds on what one subject's profile remembers; past them the least recently used go.
MAX_PLACES = 32
MAX_NETWORKS = 16


@dataclass(frozen=True, slots=True)
class Context:
    """What a subject's events before some point tell the grading of the events after it."""

    history: History = field(default_factory=History)
    anchor: TravelEvent | None = None
    latest: TravelEvent | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    successes: int = 0
    first_success_at: datetime | None = None
    # The last trusted success, and the latest event of any outcome.
    anchor: TravelEvent | None = None
    latest: TravelEvent | None = None
    places: tuple[PlaceMemory, ...] = ()
    # Proven networks (ASN) with the time of the last trusted success through each.
    networks: tuple[tuple[int, datetime], ...] = ()

    def context(self, at: datetime, settings: TravelSettings) -> Context:
        """What a login at `at`, later than every event described, is judged from."""
        return Context(_Fold(self).history(at, settings), self.anchor, self.latest)

    def known_places(self, at: datetime, settings: TravelSettings) -> tuple[Place, ...]:
        return _Fold(self).history(at, settings).known_places

    def after(self, event: TravelEvent, grade: Grade, settings: TravelSettings) -> Profile:
        """The profile once `event` (later than every event described), graded `grade`, is
        stored too."""
        fold = _Fold(self)
        fold.add(event, grade, settings)
        return fold.profile()

    def replayed(
        self, graded: Sequence[tuple[TravelEvent, Grade]], settings: TravelSettings
    ) -> Profile:
        """The profile once stored events (in event order, with the verdicts they hold) are
        added: how a profile is rebuilt from the events."""
        fold = _Fold(self)
        for event, grade in graded:
            fold.add(event, grade, settings)
        return fold.profile()

    def judge(
        self, events: Sequence[TravelEvent], settings: TravelSettings
    ) -> tuple[dict[str, Verdict], Profile]:
        """Every event's verdict (`events` in event order, all later than this profile), each
        judged from the profile of everything before it, and the profile after the last."""
        fold = _Fold(self)
        verdicts: dict[str, Verdict] = {}
        for event in events:
            # The history is built only for the logins a control looks at: most are plausible.
            history_of = partial(fold.history, event.occurred_at, settings)
            verdict = verdicts[event.key] = judge_lazily(event, fold.anchor, history_of, settings)
            fold.add(event, verdict[0], settings)
        return verdicts, fold.profile()

    def as_stored(self) -> Profile:
        """This profile as reading its document back gives it (`from_doc(to_doc())`): the
        anchor and the latest event keep no arrival number there."""
        latest = _unnumbered(self.latest)
        anchor = latest if self.anchor is self.latest else _unnumbered(self.anchor)
        return Profile(
            self.successes, self.first_success_at, anchor, latest, self.places, self.networks
        )

    # Storage: a compact JSON document, with exact ISO times (grading compares instants).

    def to_text(self) -> str:
        """The stored document's JSON text (times written by orjson: see profile_doc)."""
        return orjson.dumps(self._document()).decode()

    def to_doc(self) -> dict[str, Any]:
        """The stored document as JSON values (times as their ISO texts)."""
        loaded: dict[str, Any] = orjson.loads(self.to_text())
        return loaded

    def _document(self) -> dict[str, Any]:
        latest = event_doc(self.latest)
        return {
            "v": DOC_VERSION,
            "successes": self.successes,
            "first_success_at": self.first_success_at,
            # Mostly one event (the last login succeeded and was trusted): written out once.
            "anchor": "latest" if self.anchor is self.latest else event_doc(self.anchor),
            "latest": latest,
            "places": [memory_doc(memory) for memory in self.places],
            "networks": self.networks,
        }

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> Profile | None:
        """The profile a document describes; None for a document of another version."""
        if doc.get("v") != DOC_VERSION:
            return None
        first = doc.get("first_success_at")
        latest = event_of(doc.get("latest"))
        anchor_doc = doc.get("anchor")
        return Profile(
            successes=int(doc["successes"]),
            first_success_at=datetime.fromisoformat(first) if first else None,
            anchor=latest if anchor_doc == "latest" else event_of(anchor_doc),
            latest=latest,
            places=tuple(memory_of(item) for item in doc["places"]),
            networks=tuple(
                (int(asn), datetime.fromisoformat(seen)) for asn, seen in doc["networks"]
            ),
        )


def is_new_country(place: Place | None, history: History) -> bool:
    """Whether a login at `place` comes from a country none of the known places in `history`
    are in. Only a subject with known places has home countries to leave, and a place (or a
    known place) whose country the database does not give proves nothing either way."""
    if place is None or not place.country or not history.known_places:
        return False
    return all(known.country and known.country != place.country for known in history.known_places)


def judge_timeline(
    events: Iterable[TravelEvent], settings: TravelSettings, before: Profile | None = None
) -> dict[str, Verdict]:
    """Every login's verdict, by key: the events in event order, from `before` (nothing, by
    default). What storing them one by one in time order gives."""
    return (before or Profile()).judge(sort_timeline(events), settings)[0]


class _Fold:
    """A profile being moved forward event by event, in local state: a bulk batch judges
    thousands of logins, and a frozen Profile per login cost more than the grading itself."""

    __slots__ = ("anchor", "first", "latest", "networks", "places", "successes")

    def __init__(self, profile: Profile) -> None:
        self.successes = profile.successes
        self.first = profile.first_success_at
        self.anchor = profile.anchor
        self.latest = profile.latest
        self.places = list(profile.places)
        self.networks = dict(profile.networks)

    def history(self, at: datetime, settings: TravelSettings) -> History:
        horizon = at - settings.known_place_memory
        days = settings.known_place_days
        places = tuple(m.place for m in self.places if m.last_seen >= horizon and m.known(days))
        networks = frozenset(asn for asn, seen in self.networks.items() if seen >= horizon)
        return History(self.successes, self.first, places, networks)

    def add(self, event: TravelEvent, grade: Grade, settings: TravelSettings) -> None:
        self.latest = event
        if not event.success:
            return
        self.successes += 1
        if self.first is None:
            self.first = event.occurred_at
        trusted = is_trusted(grade, event.review)
        if trusted:
            self.anchor = event
            if event.asn is not None:
                self._remember_network(event.asn, event.occurred_at)
        if event.place is not None:
            self._remember_place(event, trusted, settings)

    def _remember_place(self, event: TravelEvent, trusted: bool, settings: TravelSettings) -> None:
        place, at = event.place, event.occurred_at
        assert place is not None
        contested = event.review == COMPROMISED
        horizon = at - settings.known_place_memory
        places = [m for m in self.places if m.last_seen >= horizon]
        index = _cluster_of(places, place, settings.known_location_radius_km)
        if index is None:
            places.append(first_memory(place, at, trusted, contested))
            if len(places) > MAX_PLACES:
                places.remove(min(places, key=_last_seen))
        else:
            places[index] = places[index].seen(at, trusted, contested)
        self.places = places

    def _remember_network(self, asn: int, at: datetime) -> None:
        networks = self.networks
        networks.pop(asn, None)
        networks[asn] = at
        if len(networks) > MAX_NETWORKS:
            del networks[next(iter(networks))]

    def profile(self) -> Profile:
        return Profile(
            self.successes,
            self.first,
            self.anchor,
            self.latest,
            tuple(self.places),
            tuple(self.networks.items()),
        )


def _last_seen(memory: PlaceMemory) -> datetime:
    return memory.last_seen


def _cluster_of(places: Sequence[PlaceMemory], place: Place, radius_km: float) -> int | None:
    """The index of the remembered place `place` belongs to: the same coordinates, else the
    nearest within `radius_km`."""
    for index, memory in enumerate(places):
        if memory.place is place or (
            memory.place.lat == place.lat and memory.place.lon == place.lon
        ):
            return index
    nearest, best = None, radius_km
    for index, memory in enumerate(places):
        distance = haversine_km(place.lat, place.lon, memory.place.lat, memory.place.lon)
        if distance < best:
            nearest, best = index, distance
    return nearest


def _unnumbered(event: TravelEvent | None) -> TravelEvent | None:
    if event is None or event.arrival_seq == PROFILE_ARRIVAL:
        return event
    return TravelEvent(
        event.key,
        event.occurred_at,
        PROFILE_ARRIVAL,
        event.place,
        event.success,
        event.ip,
        event.asn,
        event.review,
    )
