"""Recording login events: geolocate, store, find neighbours, grade, and re-grade the events an
out-of-order arrival changes. All in the caller's transaction; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator, GeoResult
from globeguard.kit.clock import as_utc
from globeguard.kit.errors import Conflict
from globeguard.settings import TravelSettings
from globeguard.travel.detect import EventAssessment, Grade, assess_event, assess_timeline
from globeguard.travel.models import LoginEvent
from globeguard.travel.repository import KNOWN_PLACES_WINDOW, LoginEventRepository
from globeguard.travel.superman_view import SupermanView, superman_view
from globeguard.travel.timeline import History, Neighbours, Place, TravelEvent

# An out-of-order arrival re-grades the events after it; past this many the rest keep their
# grade (a sender replaying months of history should use a bulk import instead).
REGRADE_WINDOW = 200
# Arrival order of an event not yet stored: after every stored one (see record()).
LAST_ARRIVAL = 2**62


@dataclass(frozen=True, slots=True)
class LoginReport:
    """What happened, as a sender (or Globeguard's own sign-in) reports it."""

    subject: str
    occurred_at: datetime
    success: bool
    source: str
    ip: str | None = None
    user_id: uuid.UUID | None = None
    user_agent: str | None = None
    failure_reason: str | None = None
    event_uuid: str | None = None
    # Fingerprint of the sender's body: the same uuid with another body is a conflict.
    body_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    event: LoginEvent
    geo: GeoResult | None
    assessment: EventAssessment
    neighbours: Neighbours
    replay: bool

    def superman(self, threshold_mph: float) -> SupermanView:
        return superman_view(to_travel(self.event), self.neighbours, threshold_mph)


def verdict_of(assessment: EventAssessment) -> tuple[Grade, dict[str, Any] | None]:
    """A login's verdict is that of the journey *to* it from the preceding login: of an
    impossible pair, the later login is the suspicious one, whichever arrived first. So a
    login's verdict changes only when an earlier login arrives late."""
    pair = assessment.preceding
    return (Grade.NONE, None) if pair is None else (pair.grade, pair.as_dict())


def place_of(event: LoginEvent) -> Place | None:
    if not event.located or event.latitude is None or event.longitude is None:
        return None
    radius = float(event.accuracy_radius_km) if event.accuracy_radius_km is not None else None
    return Place(event.latitude, event.longitude, radius, event.country_iso, event.city_name)


def to_travel(event: LoginEvent) -> TravelEvent:
    return TravelEvent(
        key=event.event_uuid,
        occurred_at=as_utc(event.occurred_at),
        arrival_seq=event.id,
        place=place_of(event),
        success=event.success,
        ip=event.ip,
    )


def geo_columns(geo: GeoResult | None) -> dict[str, Any]:
    if geo is None:
        return {"located": False, "geo_reason": "no_ip"}
    return {
        "located": geo.located,
        "geo_reason": None if geo.located else str(geo.reason),
        "latitude": geo.latitude,
        "longitude": geo.longitude,
        "accuracy_radius_km": geo.accuracy_radius_km,
        "country_iso": geo.country_iso,
        "country_geoname_id": geo.country_geoname_id,
        "subdivision_iso": geo.subdivision_iso,
        "subdivision_geoname_id": geo.subdivision_geoname_id,
        "city_name": geo.city_name,
        "city_geoname_id": geo.city_geoname_id,
        "time_zone": geo.time_zone,
        "asn": geo.asn,
    }


class LoginEventService:
    def __init__(self, locator: GeoLocator, settings: TravelSettings) -> None:
        self.locator = locator
        self.settings = settings

    def locate(self, ip: str | None) -> GeoResult | None:
        return self.locator.locate(ip) if ip else None

    async def record(
        self, session: AsyncSession, report: LoginReport, geo: GeoResult | None = None
    ) -> Recorded:
        """Store `report` (or recognise a replay of it) and grade it against its neighbours.
        Concurrent reports for one subject are serialised, so none misses another."""
        repo = LoginEventRepository(session)
        await repo.lock_subject(report.subject)
        if report.event_uuid and (existing := await repo.by_uuid(report.event_uuid)):
            return await self._replay(repo, existing, report)
        geo = geo if geo is not None else self.locate(report.ip)
        event = self._new_event(report, geo)
        # Graded before it is stored, in three statements (two reads, one insert): sign-in
        # is hot. With the subject locked the new row gets the subject's highest id, so it
        # sorts after every stored event of the same instant: the window's head precedes it.
        window = await repo.recent_up_to(report.subject, report.occurred_at, KNOWN_PLACES_WINDOW)
        after = await repo.first_after(report.subject, report.occurred_at)
        neighbours = Neighbours(
            to_travel(window[0]) if window else None, to_travel(after) if after else None
        )
        history = await self._history_of_window(
            window, lambda: repo.success_stats_up_to(report.subject, report.occurred_at)
        )
        current = TravelEvent(
            event.event_uuid,
            report.occurred_at,
            LAST_ARRIVAL,
            place_of(event),
            report.success,
            event.ip,
        )
        assessment = assess_event(current, neighbours, history, self.settings)
        grade, reasons = verdict_of(assessment)
        event.verdict, event.verdict_reasons = grade.value, reasons
        await repo.add(event)
        if after is not None:
            await self._regrade_after(repo, event)
        return Recorded(event, geo, assessment, neighbours, replay=False)

    async def _history_of_window(
        self, window: Sequence[LoginEvent], totals: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> History:
        """History from the subject's most recent events (newest first), asking the database
        for totals only when the learning period needs more than the window shows."""
        successes = [e for e in window if e.success]
        places = tuple(p for e in successes if (p := place_of(e)))
        first = min((as_utc(e.occurred_at) for e in successes), default=None)
        complete = len(window) < KNOWN_PLACES_WINDOW
        needs_totals = self.settings.learning_period.total_seconds() > 0 or (
            len(successes) < self.settings.learning_logins
        )
        if complete or not needs_totals:
            return History(len(successes), first, places)
        count, first_ever = await totals()
        return History(count, as_utc(first_ever) if first_ever else None, places)

    def _new_event(self, report: LoginReport, geo: GeoResult | None) -> LoginEvent:
        return LoginEvent(
            event_uuid=report.event_uuid or uuid.uuid4().hex,
            subject=report.subject,
            user_id=report.user_id,
            source=report.source,
            occurred_at=report.occurred_at,
            success=report.success,
            failure_reason=report.failure_reason,
            ip=geo.ip if geo is not None else report.ip,
            user_agent=(report.user_agent or "")[:512] or None,
            body_digest=report.body_digest,
            **geo_columns(geo),
        )

    async def _replay(
        self, repo: LoginEventRepository, existing: LoginEvent, report: LoginReport
    ) -> Recorded:
        if existing.body_digest != report.body_digest or existing.subject != report.subject:
            raise Conflict(
                "this event_uuid was already used for a different event",
                code="event_uuid_conflict",
                event_uuid=existing.event_uuid,
            )
        neighbours = await self._neighbours(repo, existing)
        history = await self._history(repo, existing)
        assessment = assess_event(to_travel(existing), neighbours, history, self.settings)
        return Recorded(existing, None, assessment, neighbours, replay=True)

    async def _neighbours(self, repo: LoginEventRepository, event: LoginEvent) -> Neighbours:
        before, after = await repo.preceding(event), await repo.subsequent(event)
        return Neighbours(
            to_travel(before) if before is not None else None,
            to_travel(after) if after is not None else None,
        )

    async def _history(self, repo: LoginEventRepository, event: LoginEvent) -> History:
        """The history before a stored event (replays, re-grading)."""
        window = (await repo.around(event, before=KNOWN_PLACES_WINDOW, after=0))[:-1]
        return await self._history_of_window(window[::-1], lambda: repo.success_stats(event))

    async def _regrade_after(self, repo: LoginEventRepository, event: LoginEvent) -> None:
        """An event that arrived after later ones changes its neighbours' pairs and, through
        learning and known places, possibly every later grade: re-grade from the event before
        its preceding one onwards (the first two only to restore their pairs)."""
        window = await repo.around(event, before=2, after=REGRADE_WINDOW)
        start = window[0]
        history = await self._history(repo, start)
        assessments = assess_timeline([to_travel(e) for e in window], self.settings, history)
        by_key = {e.event_uuid: e for e in window}
        for assessment in assessments[1:]:
            row = by_key[assessment.key]
            if row.id == event.id:
                continue
            grade, reasons = verdict_of(assessment)
            if (row.verdict, row.verdict_reasons) != (grade.value, reasons):
                await repo.set_verdict(row.id, grade.value, reasons)

    async def history_of(
        self, session: AsyncSession, user_id: uuid.UUID, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        return await LoginEventRepository(session).history(user_id, before_id, limit)
