"""Recording login events: geolocate, store, find neighbours, grade, and re-grade the events an
out-of-order arrival changes. All in the caller's transaction; never commits."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator, GeoResult
from globeguard.kit.clock import as_utc
from globeguard.kit.errors import Conflict
from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.grading import judge, judge_timeline
from globeguard.travel.models import LoginEvent
from globeguard.travel.observers import (
    LoginEventObserver,
    VerdictChange,
    notify_inserted,
    notify_regraded,
)
from globeguard.travel.profile import Profile
from globeguard.travel.repository import KNOWN_PLACES_WINDOW, LoginEventRepository
from globeguard.travel.superman_view import SupermanView, superman_view
from globeguard.travel.timeline import History, Neighbours, Place, TravelEvent

# An out-of-order arrival re-grades the events after it; past this many the rest keep their
# grade (a sender replaying months of history should use a bulk import instead).
REGRADE_WINDOW = 200
# Arrival order of an event not yet stored: after every stored one (see record()).
LAST_ARRIVAL = 2**62
# "Before this" means "all of them".
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


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


Refusal = Callable[[Grade], str | None]


@dataclass(frozen=True, slots=True)
class Recorded:
    event: LoginEvent
    geo: GeoResult | None
    grade: Grade
    # The journey from the anchor (last successful login), or None.
    journey: dict[str, Any] | None
    # The nearest stored logins of any outcome, as the Superman view reports them.
    neighbours: Neighbours
    replay: bool
    # Why a successful report was stored as refused (e.g. "impossible_travel"), if it was.
    refused: str | None

    def superman(self, threshold_mph: float) -> SupermanView:
        return superman_view(to_travel(self.event), self.neighbours, threshold_mph)


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
    )


def columns_of(event: LoginEvent) -> dict[str, Any]:
    return {column.key: getattr(event, column.key) for column in LoginEvent.__table__.columns}


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
    def __init__(
        self,
        locator: GeoLocator,
        settings: TravelSettings,
        observers: Sequence[LoginEventObserver] = (),
    ) -> None:
        self.locator = locator
        self.settings = settings
        self.observers = observers

    def locate(self, ip: str | None) -> GeoResult | None:
        return self.locator.locate(ip) if ip else None

    async def record(
        self,
        session: AsyncSession,
        report: LoginReport,
        geo: GeoResult | None = None,
        refuse: Refusal | None = None,
    ) -> Recorded:
        """Store `report` (or recognise a replay of it) and grade it. Concurrent reports for one
        subject are serialised, so none misses another. `refuse` may turn a successful report
        into a refused one (stored as a failure with that reason) once its verdict is known."""
        repo = LoginEventRepository(session)
        await repo.lock_subject(report.subject)
        if report.event_uuid and (existing := await repo.by_uuid(report.event_uuid)):
            return await self._replay(repo, existing, report)
        geo = geo if geo is not None else self.locate(report.ip)
        event = self._new_event(report, geo)
        # Graded before it is stored: sign-in is hot. With the subject locked the new row gets
        # the subject's highest id, so it sorts after every stored event of the same instant.
        saved = (await repo.profiles_of([report.subject])).get(report.subject)
        profile = None
        if saved is not None and as_utc(saved[0]) <= report.occurred_at:
            # Later than every stored event: the profile is its whole past.
            profile = Profile.from_doc(saved[1])
            context, after = profile.context(), None
            anchor, history, latest = context.anchor, context.history, context.latest
        else:
            window = await repo.recent_up_to(
                report.subject, report.occurred_at, KNOWN_PLACES_WINDOW
            )
            after = await repo.first_after(report.subject, report.occurred_at)
            anchor = await self._anchor(repo, window, report)
            history = await self._history_of_window(
                window, lambda: repo.success_stats_up_to(report.subject, report.occurred_at)
            )
            latest = to_travel(window[0]) if window else None
        current = TravelEvent(
            event.event_uuid,
            report.occurred_at,
            LAST_ARRIVAL,
            place_of(event),
            report.success,
            event.ip,
        )
        grade, reasons = judge(current, anchor, history, self.settings)
        refused = refuse(grade) if (refuse is not None and report.success) else None
        if refused:
            event.success, event.failure_reason = False, refused
        event.verdict, event.verdict_reasons = grade.value, reasons
        await repo.add(event)
        await notify_inserted(self.observers, session, [columns_of(event)])
        if after is not None and event.success:
            await self._regrade_after(repo, event)
        await self._keep_profile(repo, event, profile, saved is not None)
        neighbours = Neighbours(latest, to_travel(after) if after else None)
        return Recorded(event, geo, grade, reasons, neighbours, replay=False, refused=refused)

    @staticmethod
    async def _keep_profile(
        repo: LoginEventRepository, event: LoginEvent, profile: Profile | None, saved: bool
    ) -> None:
        """Move the profile past `event`; when the event came before others, rebuild it
        from the stored events."""
        subject = event.subject
        if profile is not None:
            profiles = {subject: profile.after(to_travel(event))}
        else:
            profiles = await window_profiles(repo, [subject], END_OF_TIME)
        user_ids = {subject: event.user_id} if event.user_id is not None else {}
        await save_profiles(repo, profiles, [subject] if saved else [], user_ids)

    async def _anchor(
        self, repo: LoginEventRepository, window: Sequence[LoginFacts], report: LoginReport
    ) -> TravelEvent | None:
        """The last successful login at or before the report's time."""
        found = next((e for e in window if e.success), None)
        if found is None and len(window) == KNOWN_PLACES_WINDOW:
            found = await repo.last_success_up_to(report.subject, report.occurred_at)
        return to_travel(found) if found is not None else None

    async def _history_of_window(
        self, window: Sequence[LoginFacts], totals: Callable[[], Awaitable[tuple[int, Any]]]
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
        before, after = await repo.preceding(existing), await repo.subsequent(existing)
        neighbours = Neighbours(
            to_travel(before) if before is not None else None,
            to_travel(after) if after is not None else None,
        )
        grade = Grade(existing.verdict) if existing.verdict else Grade.NONE
        return Recorded(
            existing,
            None,
            grade,
            existing.verdict_reasons,
            neighbours,
            replay=True,
            refused=None,
        )

    async def _regrade_after(self, repo: LoginEventRepository, event: LoginEvent) -> None:
        """A success that arrived after later logins is the new anchor (and a new known place,
        a new learning step) for what follows it: re-judge from it onwards."""
        later = (await repo.around(event, before=0, after=REGRADE_WINDOW))[1:]
        if not later:
            return
        history = (await self._history(repo, event)).including(to_travel(event))
        verdicts = judge_timeline(
            [to_travel(e) for e in later], self.settings, history, anchor=to_travel(event)
        )
        changes = []
        for row in later:
            grade, reasons = verdicts[row.event_uuid]
            if (row.verdict, row.verdict_reasons) != (grade.value, reasons):
                changes.append(VerdictChange(row.id, row.verdict, grade.value))
                await repo.set_verdict(row.id, grade.value, reasons)
        await notify_regraded(self.observers, repo.session, changes)

    async def _history(self, repo: LoginEventRepository, event: LoginEvent) -> History:
        """The history before a stored event."""
        window = (await repo.around(event, before=KNOWN_PLACES_WINDOW, after=0))[:-1]
        return await self._history_of_window(window[::-1], lambda: repo.success_stats(event))

    async def history_of(
        self, session: AsyncSession, user_id: uuid.UUID, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        return await LoginEventRepository(session).history(user_id, before_id, limit)


async def window_profiles(
    repo: LoginEventRepository, subjects: Collection[str], before: datetime
) -> dict[str, Profile]:
    """Each subject's profile of its events before `before`, read from the events."""
    rows_by_subject: dict[str, list[Any]] = defaultdict(list)
    for row in await repo.context_before(subjects, before, KNOWN_PLACES_WINDOW):
        rows_by_subject[row.subject].append(row)
    profiles = {}
    for subject, window in rows_by_subject.items():
        anchor = None
        if window[0].successes and not any(r.success for r in window):
            # Successes exist but all are older than the window.
            anchor_row = await repo.last_success_before(subject, before)
            anchor = to_travel(anchor_row) if anchor_row else None
        profiles[subject] = Profile.from_window(window, to_travel, anchor)
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
    inserts, updates = [], []
    for subject, profile in profiles.items():
        assert profile.latest is not None
        values = {
            "user_id": user_ids.get(subject),
            "last_at": profile.latest.occurred_at,
            "state": profile.to_doc(),
        }
        if subject in existing:
            updates.append({"key": subject, **values})
        else:
            inserts.append({"subject": subject, **values})
    return inserts, updates
