"""Stored logins as the travel core sees them, and login profiles rebuilt from stored events
(late arrivals, reviews, bulk batches): the bridge between the `login_event` rows and the pure
fold of `travel.profile`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from globeguard.kit.clock import as_utc
from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.profile import Profile
from globeguard.travel.repository import LoginEventRepository
from globeguard.travel.timeline import Place, TravelEvent


class LoginFacts(Protocol):
    """What grading reads of a stored login: a LoginEvent, or a lighter row of its columns."""

    id: int
    event_uuid: str
    occurred_at: datetime
    success: bool
    located: bool
    latitude: float | None
    longitude: float | None
    accuracy_radius_km: int | None
    country_iso: str | None
    city_name: str | None
    ip: str | None
    asn: int | None
    review: str | None


def place_of(event: LoginFacts) -> Place | None:
    return place_from_columns(
        event.located,
        event.latitude,
        event.longitude,
        event.accuracy_radius_km,
        event.country_iso,
        event.city_name,
    )


def place_from_columns(
    located: bool,
    latitude: float | None,
    longitude: float | None,
    radius_km: int | None,
    country_iso: str | None,
    city_name: str | None,
) -> Place | None:
    """The place a stored (or about to be stored) login's geo columns describe."""
    if not located or latitude is None or longitude is None:
        return None
    radius = float(radius_km) if radius_km is not None else None
    return Place(latitude, longitude, radius, country_iso, city_name)


def to_travel(event: LoginFacts) -> TravelEvent:
    return TravelEvent(
        key=event.event_uuid,
        occurred_at=as_utc(event.occurred_at),
        arrival_seq=event.id,
        place=place_of(event),
        success=event.success,
        ip=event.ip,
        asn=event.asn,
        review=event.review,
    )


async def replayed_profiles(
    repo: LoginEventRepository,
    subjects: Collection[str],
    before: datetime,
    settings: TravelSettings,
    inclusive: bool = False,
) -> dict[str, Profile]:
    """Each subject's profile of its stored events before `before` (or at it, `inclusive`),
    rebuilt from the events: the successes within the place memory folded in event order
    with the verdicts and reviews they hold, as storing them one by one did. A subject with
    no stored event then has no profile."""
    tallies = await repo.tallies(subjects, before, inclusive=inclusive)
    if not tallies:
        return {}
    # The memory reaches back from each subject's newest event up to `before` (not from
    # `before`, which may be the end of time): all that a fold up to that event remembers.
    newest = min(as_utc(tally.occurred_at) for tally in tallies)
    since = newest - settings.known_place_memory
    window: dict[str, list[Any]] = defaultdict(list)
    for row in await repo.successes_since(subjects, since, before, inclusive=inclusive):
        window[row.subject].append(row)
    profiles = {}
    for tally in tallies:
        rows = window.get(tally.subject, [])
        graded = [(to_travel(row), Grade(row.verdict or Grade.NONE)) for row in rows]
        anchor = None
        if tally.successes > len(rows):
            # Older successes, out of the place memory: only the anchor may come from them.
            found = await repo.last_trusted_before(tally.subject, since)
            anchor = to_travel(found) if found is not None else None
        start = Profile(tally.successes - len(rows), tally.first_success, anchor)
        replayed = start.replayed(graded, settings)
        profiles[tally.subject] = replace(replayed, latest=to_travel(tally))
    return profiles


async def save_profiles(
    repo: LoginEventRepository,
    profiles: dict[str, Profile],
    existing: Collection[str],
    user_ids: dict[str, uuid.UUID],
) -> None:
    """Store each subject's profile; `existing` names those with a stored row (the caller
    read them already, under the subjects' locks)."""
    await repo.save_profiles(*profile_rows(profiles, existing, user_ids))


def profile_rows(
    profiles: dict[str, Profile], existing: Collection[str], user_ids: dict[str, uuid.UUID]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows `LoginEventRepository.save_profiles` inserts and updates."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for subject, profile in profiles.items():
        assert profile.latest is not None
        row = {
            "subject": subject,
            "user_id": user_ids.get(subject),
            "last_at": profile.latest.occurred_at,
            "state": profile.to_doc(),
        }
        (updates if subject in existing else inserts).append(row)
    return inserts, updates
