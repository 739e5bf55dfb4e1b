"""What a login profile remembers of one place, and which successes prove a place. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from globeguard.travel.detect import Grade
from globeguard.travel.timeline import Place

# Profiles carry no arrival numbers: every event they describe precedes any event judged
# against them, so their order only has to sort below those of events of the same instant.
PROFILE_ARRIVAL = 0
SAFE = "safe"
COMPROMISED = "compromised"
FLAGGED = frozenset({Grade.SUSPICIOUS, Grade.IMPOSSIBLE})


def is_trusted(grade: Grade, review: str | None) -> bool:
    """Whether a success with this verdict and review proves its place: not flagged, or
    reviewed "safe"; never when reviewed "compromised" (see travel.profile)."""
    if review == COMPROMISED:
        return False
    return review == SAFE or grade not in FLAGGED


@dataclass(frozen=True, slots=True)
class PlaceMemory:
    """One of the subject's places: where, how often and when it was used, and whether the
    subject proved it."""

    place: Place
    first_seen: datetime
    last_seen: datetime
    count: int
    days: int
    # The proleptic ordinal of the last UTC day with a success here.
    last_day: int
    trusted: bool
    contested: bool

    def known(self, days_needed: int) -> bool:
        if self.trusted:
            return True
        return days_needed > 0 and not self.contested and self.days >= days_needed

    def seen(self, at: datetime, trusted: bool, contested: bool) -> PlaceMemory:
        day = at.toordinal()
        return PlaceMemory(
            self.place,
            self.first_seen,
            at,
            self.count + 1,
            self.days + (day != self.last_day),
            day,
            self.trusted or trusted,
            self.contested or contested,
        )


def first_memory(place: Place, at: datetime, trusted: bool, contested: bool) -> PlaceMemory:
    return PlaceMemory(place, at, at, 1, 1, at.toordinal(), trusted, contested)
