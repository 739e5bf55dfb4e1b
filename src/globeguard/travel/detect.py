"""Globeguard's impossible-travel verdict on one journey: graded, explained, and pure (times are
passed in; nothing here reads a clock, a file or a database).

A pair is a journey between two of a subject's events, from the earlier to the later in event
order, ``(occurred_at, arrival_seq)`` (see ``timeline``). ``assess_pair`` grades it and says
why. Which pair judges a login (the journey to it from the subject's last successful login
before it) and which events feed the controls' ``History`` (successes only) is decided in
``grading``; this module only answers "how believable is this journey, given this history".

Measurement of a pair (``measure``):

- d = haversine on the mean Earth radius 6371.0088 km; r1, r2 = the accuracy radii in km,
  0 when the GeoIP database gives none; d' = max(0, d - r1 - r2), the distance if both sign-ins
  happened at the near edges of their circles.
- Δt = max(|t2 - t1|, 1 s); speed = d in miles / Δt in hours, and likewise for d'.

Grade of a pair (threshold T = ``speed_threshold_mph``, default 500; comparisons on the
unrounded speeds, strictly above: 500.0 mph is plausible, 500.01 is not):

- ``unverifiable``: either side has no place, so nothing can be measured.
- ``impossible``: the adjusted speed > T: too fast even from edge to edge.
- ``suspicious``: speed > T >= adjusted speed: too fast between centroids only.
- ``plausible``: speed <= T.

``Grade.NONE`` is never a pair's grade: ``grading`` gives it to a login with nothing to be
judged against (no earlier success).

Examples: Kassel (51.3167, 9.5, r100) then Amsterdam (52.3824, 4.8995, r200) 1000 s later is
337.4 km, 754.8 mph between centroids but 37.4 km and 83.7 mph once 300 km of radii are taken
off, so suspicious, not impossible. Two r1000 points 1069 mi apart one hour apart: 1069 mph,
but the circles overlap (1720 km < 2000 km), d' = 0, so suspicious.

False-positive controls (``TravelSettings``; each lowers a suspicious or impossible grade and
is named in ``Reasons.lowered_by``; the first that applies is named, in this order). They are
evaluated for the pair's later event, the sign-in that completes the journey, against
``history``, what the subject's sign-ins before it proved (see ``profile``):

- ``min_distance`` → plausible: d < ``min_distance_km`` (default 100 km; two readings of one
  city differ by tens of km between databases and mobile carriers).
- ``known_location`` → plausible: the later place is within ``known_location_radius_km``
  (default 50 km) of one of the subject's known places: proven (a success not flagged, an
  admin's "safe"), or reached on ``known_place_days`` distinct days with no "compromised"
  review, and used within ``known_place_memory``. An attacker's flagged success is neither,
  so it does not vouch for the attacker's next sign-in from there.
- ``learning`` → one grade lower (impossible → suspicious, suspicious → plausible): fewer than
  ``learning_logins`` successful sign-ins before the later event, or the first of them less
  than ``learning_period`` before it. A new user's second place is not yet known, but a
  takeover in the first days still raises a flag.
- ``known_network`` → at most suspicious: the later sign-in comes through a network (ASN) the
  subject proved before. A carrier's addresses geolocate to a hub far from the user; through
  the user's own carrier that is worth a look, not a block.

Each control is off at 0 (the network control needs an ASN database). ``unverifiable`` is never
lowered: there is nothing to excuse. The raw grade stays in ``Reasons.raw_grade``; the Superman
flags (``superman_view``) never see the controls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from globeguard.settings import TravelSettings
from globeguard.travel.geo_math import (
    elapsed_seconds,
    exceeds,
    haversine_km,
    km_to_mi,
    speed_mph,
)
from globeguard.travel.timeline import History, Place, TravelEvent


class Grade(StrEnum):
    NONE = "none"
    PLAUSIBLE = "plausible"
    UNVERIFIABLE = "unverifiable"
    SUSPICIOUS = "suspicious"
    IMPOSSIBLE = "impossible"


class Control(StrEnum):
    MIN_DISTANCE = "min_distance"
    KNOWN_LOCATION = "known_location"
    LEARNING = "learning"
    KNOWN_NETWORK = "known_network"


# What each control makes of a fast grade (suspicious or impossible).
_LOWERED: dict[tuple[Control, Grade], Grade] = {
    (Control.MIN_DISTANCE, Grade.SUSPICIOUS): Grade.PLAUSIBLE,
    (Control.MIN_DISTANCE, Grade.IMPOSSIBLE): Grade.PLAUSIBLE,
    (Control.KNOWN_LOCATION, Grade.SUSPICIOUS): Grade.PLAUSIBLE,
    (Control.KNOWN_LOCATION, Grade.IMPOSSIBLE): Grade.PLAUSIBLE,
    (Control.LEARNING, Grade.SUSPICIOUS): Grade.PLAUSIBLE,
    (Control.LEARNING, Grade.IMPOSSIBLE): Grade.SUSPICIOUS,
    (Control.KNOWN_NETWORK, Grade.IMPOSSIBLE): Grade.SUSPICIOUS,
}


def lowered(raw: Grade, control: Control | None) -> Grade:
    """The grade a pair graded `raw` gets once `control` applies (None: no control)."""
    return raw if control is None else _LOWERED[(control, raw)]


@dataclass(frozen=True, slots=True)
class Measurement:
    distance_km: float
    distance_mi: float
    adjusted_distance_km: float
    adjusted_distance_mi: float
    speed_mph: float
    adjusted_speed_mph: float


# Grading runs per login, bulk ingestion thousands of times per batch: the field names are
# read once here rather than through dataclasses.fields() on every call.
MEASUREMENT_KEYS = tuple(f.name for f in fields(Measurement))


def _numbers(measured: Measurement) -> dict[str, float]:
    """The measurement as `MEASUREMENT_KEYS` name them (a test holds the two together)."""
    return {
        "distance_km": measured.distance_km,
        "distance_mi": measured.distance_mi,
        "adjusted_distance_km": measured.adjusted_distance_km,
        "adjusted_distance_mi": measured.adjusted_distance_mi,
        "speed_mph": measured.speed_mph,
        "adjusted_speed_mph": measured.adjusted_speed_mph,
    }


@dataclass(frozen=True, slots=True)
class Reasons:
    """Why a pair got its grade. ``origin`` is the earlier event's place, ``destination`` the
    later's; ``measurement`` is None exactly when the pair is unverifiable."""

    elapsed_seconds: float
    threshold_mph: float
    origin: Place | None
    destination: Place | None
    measurement: Measurement | None
    raw_grade: Grade
    lowered_by: Control | None

    def as_dict(self) -> dict[str, Any]:
        """A flat JSON-ready object; the measurement keys are null when unverifiable."""
        reasons: dict[str, Any] = {}
        _add_reasons(
            reasons,
            self.elapsed_seconds,
            self.threshold_mph,
            self.origin,
            self.destination,
            self.measurement,
            self.raw_grade,
            self.lowered_by,
        )
        return reasons


def _add_reasons(
    into: dict[str, Any],
    seconds: float,
    threshold_mph: float,
    origin: Place | None,
    destination: Place | None,
    measured: Measurement | None,
    raw: Grade,
    control: Control | None,
) -> None:
    """Reasons.as_dict's keys and values, added to `into`."""
    into.update(dict.fromkeys(MEASUREMENT_KEYS) if measured is None else _numbers(measured))
    into["elapsed_seconds"] = seconds
    into["threshold_mph"] = threshold_mph
    into["origin"] = _place_dict(origin)
    into["destination"] = _place_dict(destination)
    into["raw_grade"] = raw.value
    into["lowered_by"] = None if control is None else control.value


def _place_dict(place: Place | None) -> dict[str, Any] | None:
    if place is None:
        return None
    return {
        "lat": place.lat,
        "lon": place.lon,
        "radius_km": place.radius_km,
        "country": place.country,
        "city": place.city,
    }


@dataclass(frozen=True, slots=True)
class PairVerdict:
    earlier: str
    later: str
    grade: Grade
    reasons: Reasons

    def as_dict(self) -> dict[str, Any]:
        head = {"earlier": self.earlier, "later": self.later, "grade": self.grade.value}
        head.update(self.reasons.as_dict())
        return head


def anchor_of(reasons: Mapping[str, Any] | None) -> str | None:
    """The event key of the login a stored verdict measured from (its `"earlier"`), the
    journey's origin; None for a first login or a verdict without one."""
    earlier = (reasons or {}).get("earlier")
    return earlier if isinstance(earlier, str) else None


def classify(speed: float, adjusted_speed: float, threshold_mph: float) -> Grade:
    if exceeds(adjusted_speed, threshold_mph):
        return Grade.IMPOSSIBLE
    if exceeds(speed, threshold_mph):
        return Grade.SUSPICIOUS
    return Grade.PLAUSIBLE


def _radius(place: Place) -> float:
    return place.radius_km or 0.0


# Two logins from one place, the commonest pair: the haversine of a point to itself is
# exactly 0.0, and so is everything measured from it (radii only ever subtract from it).
NOWHERE = Measurement(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def measure(origin: Place, destination: Place, seconds: float) -> Measurement:
    if origin.lat == destination.lat and origin.lon == destination.lon:
        return NOWHERE
    return measure_apart(origin, destination, seconds)


def measure_apart(origin: Place, destination: Place, seconds: float) -> Measurement:
    """`measure` worked out in full, whatever the places."""
    distance = haversine_km(origin.lat, origin.lon, destination.lat, destination.lon)
    adjusted = max(0.0, distance - _radius(origin) - _radius(destination))
    distance_mi, adjusted_mi = km_to_mi(distance), km_to_mi(adjusted)
    return Measurement(
        distance_km=distance,
        distance_mi=distance_mi,
        adjusted_distance_km=adjusted,
        adjusted_distance_mi=adjusted_mi,
        speed_mph=speed_mph(distance_mi, seconds),
        adjusted_speed_mph=speed_mph(adjusted_mi, seconds),
    )


def is_known_place(place: Place, known: Iterable[Place], radius_km: float) -> bool:
    return any(haversine_km(place.lat, place.lon, k.lat, k.lon) < radius_km for k in known)


def is_learning(at: datetime, history: History, settings: TravelSettings) -> bool:
    if history.successes < settings.learning_logins:
        return True
    if settings.learning_period <= timedelta(0):
        return False
    first = history.first_success_at
    return first is None or at - first < settings.learning_period


def lowering_control(
    measurement: Measurement,
    raw: Grade,
    later: TravelEvent,
    history_of: Callable[[], History],
    settings: TravelSettings,
) -> Control | None:
    """The false-positive control that lowers a fast pair graded `raw`, if any (see the
    module doc). `history_of` is called only when a control needs the history (distance
    alone decides first)."""
    if measurement.distance_km < settings.min_distance_km:
        return Control.MIN_DISTANCE
    history = history_of()
    radius = settings.known_location_radius_km
    if later.place is not None and is_known_place(later.place, history.known_places, radius):
        return Control.KNOWN_LOCATION
    if is_learning(later.occurred_at, history, settings):
        return Control.LEARNING
    if raw is Grade.IMPOSSIBLE and later.asn is not None and later.asn in history.known_networks:
        return Control.KNOWN_NETWORK
    return None


def assess_pair(
    earlier: TravelEvent, later: TravelEvent, history: History, settings: TravelSettings
) -> PairVerdict:
    """The verdict on travelling from ``earlier`` to ``later``; ``history`` is the subject's
    successful events before ``later``."""
    return assess_pair_lazily(earlier, later, lambda: history, settings)


def assess_pair_lazily(
    earlier: TravelEvent,
    later: TravelEvent,
    history_of: Callable[[], History],
    settings: TravelSettings,
) -> PairVerdict:
    """`assess_pair`, asking for the history only if a control needs it: most pairs are
    plausible, and a bulk batch would otherwise build a history (known places out of the
    profile's recent slots) for every one of its logins."""
    seconds, measured, raw, control = _assess(earlier, later, history_of, settings)
    grade = lowered(raw, control)
    threshold = settings.speed_threshold_mph
    reasons = Reasons(seconds, threshold, earlier.place, later.place, measured, raw, control)
    return PairVerdict(earlier.key, later.key, grade, reasons)


def pair_verdict(
    earlier: TravelEvent,
    later: TravelEvent,
    history_of: Callable[[], History],
    settings: TravelSettings,
) -> tuple[Grade, dict[str, Any]]:
    """`assess_pair_lazily`'s grade and `as_dict()`, without the objects in between: the
    bulk path grades every login of a batch, and only wants what is stored."""
    seconds, measured, raw, control = _assess(earlier, later, history_of, settings)
    grade = lowered(raw, control)
    verdict = {"earlier": earlier.key, "later": later.key, "grade": grade.value}
    threshold = settings.speed_threshold_mph
    _add_reasons(verdict, seconds, threshold, earlier.place, later.place, measured, raw, control)
    return grade, verdict


def _assess(
    earlier: TravelEvent,
    later: TravelEvent,
    history_of: Callable[[], History],
    settings: TravelSettings,
) -> tuple[float, Measurement | None, Grade, Control | None]:
    """(elapsed seconds, measurement, raw grade, lowering control) of a pair."""
    before, after = earlier.occurred_at, later.occurred_at
    if not (before < after or (before == after and earlier.arrival_seq < later.arrival_seq)):
        raise ValueError(f"{earlier.key!r} does not precede {later.key!r}")
    seconds = elapsed_seconds(before, after)
    if earlier.place is None or later.place is None:
        return seconds, None, Grade.UNVERIFIABLE, None
    measured = measure(earlier.place, later.place, seconds)
    raw = classify(measured.speed_mph, measured.adjusted_speed_mph, settings.speed_threshold_mph)
    control = None
    if raw in (Grade.SUSPICIOUS, Grade.IMPOSSIBLE):
        control = lowering_control(measured, raw, later, history_of, settings)
    return seconds, measured, raw, control
