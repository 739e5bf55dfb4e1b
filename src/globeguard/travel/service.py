"""Recording login events: geolocate, store, find neighbours, grade, and re-grade the events an
out-of-order arrival changes. All in the caller's transaction; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator, GeoResult
from globeguard.kit.clock import as_utc, utcnow
from globeguard.kit.errors import Conflict
from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.grading import judge
from globeguard.travel.linking import SubjectLinker
from globeguard.travel.models import LoginEvent
from globeguard.travel.observers import (
    LoginEventObserver,
    VerdictChange,
    notify_inserted,
    notify_regraded,
)
from globeguard.travel.profile import Profile, is_new_country
from globeguard.travel.replay import (
    place_from_columns,
    profile_rows,
    replayed_profiles,
    save_profiles,
    to_travel,
)
from globeguard.travel.repository import LoginEventRepository
from globeguard.travel.superman_view import SupermanView, superman_view
from globeguard.travel.timeline import Neighbours, TravelEvent

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


# Given a successful report's verdict and whether it comes from a new country (see
# `profile.is_new_country`), the reason to store it as a failure instead, or None.
Refusal = Callable[[Grade, bool], Awaitable[str | None]]


@dataclass(slots=True)
class Recorded:
    # The stored event's columns (id included).
    columns: dict[str, Any]
    geo: GeoResult | None
    grade: Grade
    # The journey from the anchor (last successful login), or None.
    journey: dict[str, Any] | None
    # The nearest stored logins of any outcome, as the Superman view reports them.
    neighbours: Neighbours
    replay: bool
    # Why a successful report was stored as refused (e.g. "impossible_travel"), if it was.
    refused: str | None
    # A success from a country none of the subject's known places are in (and it has some).
    new_country: bool = False
    _event: LoginEvent | None = field(default=None, repr=False)

    @property
    def event_uuid(self) -> str:
        return str(self.columns["event_uuid"])

    @property
    def event(self) -> LoginEvent:
        """The stored event as an object, made on first use: a sign-in that goes through
        needs only its uuid, and an ORM object of ~30 columns costs ~0.2 ms to make."""
        if self._event is None:
            self._event = LoginEvent(**self.columns)
        return self._event

    def superman(self, threshold_mph: float) -> SupermanView:
        return superman_view(to_travel(self.event), self.neighbours, threshold_mph)


# Every column of a new event but its id, unset: geo_columns sets only those it knows.
EMPTY_ROW: dict[str, Any] = {
    column.key: None for column in LoginEvent.__table__.columns if column.key != "id"
}


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
        "subdivision_name": geo.subdivision_name,
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
        linker: SubjectLinker | None = None,
    ) -> None:
        self.locator = locator
        self.settings = settings
        self.observers = observers
        # Gives a reported login to the user its subject names (None: sign-ins only).
        self.linker = linker

    def locate(self, ip: str | None) -> GeoResult | None:
        return self.locator.locate(ip) if ip else None

    async def record(
        self,
        session: AsyncSession,
        report: LoginReport,
        geo: GeoResult | None = None,
        refuse: Refusal | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> Recorded:
        """Store `report` (or recognise a replay of it) and grade it. Concurrent reports for one
        subject are serialised, so none misses another. `refuse` may turn a successful report
        into a refused one (stored as a failure with that reason) once its verdict is known.
        `now` (Globeguard's own sign-ins: the login is happening now): the login's time is read
        from it once the subject is serialised, so the subject's logins are stored in the order
        of their times."""
        repo = LoginEventRepository(session)
        subject = report.subject
        await repo.lock_subject(subject)
        if report.event_uuid and (existing := await repo.by_uuid(report.event_uuid)):
            return await self._replay(repo, existing, report)
        # Graded before it is stored: sign-in is hot. With the subject locked the new row gets
        # the subject's highest id, so it sorts after every stored event of the same instant.
        saved = (await repo.profiles_of([subject])).get(subject)
        if now is not None:
            # After the transaction's first statement: on SQLite it now holds the writer, on
            # PostgreSQL the subject's lock. A time read before could be older than a
            # concurrent sign-in stored meanwhile, and grading it would replay the subject's
            # stored events instead of reading its profile (a third of the event loop's CPU
            # when one account signed in from 8 clients at once).
            report = replace(report, occurred_at=now())
        at = report.occurred_at
        geo = geo if geo is not None else self.locate(report.ip)
        row = self._new_row(report, geo)
        if row["user_id"] is None and self.linker is not None:
            row["user_id"] = (await self.linker.owners(session, [subject])).get(subject)
        profile = Profile.from_doc(saved[1]) if saved is not None else None
        after = None
        if profile is None or as_utc(saved[0]) > at:  # type: ignore[index]
            # Earlier than a stored event (or no usable profile): its past, from the events.
            profile = (await replayed_profiles(repo, [subject], at, self.settings, True)).get(
                subject, Profile()
            )
            after = await repo.first_after(subject, at)
        context = profile.context(at, self.settings)
        place = place_from_columns(
            row["located"],
            row["latitude"],
            row["longitude"],
            row["accuracy_radius_km"],
            row["country_iso"],
            row["city_name"],
        )
        current = TravelEvent(
            row["event_uuid"], at, LAST_ARRIVAL, place, report.success, row["ip"], row["asn"]
        )
        grade, reasons = judge(current, context.anchor, context.history, self.settings)
        new_country = report.success and is_new_country(current.place, context.history)
        refused = await refuse(grade, new_country) if (refuse and report.success) else None
        if refused:
            row["success"], row["failure_reason"] = False, refused
        row["verdict"], row["verdict_reasons"] = grade.value, reasons
        recorded = Recorded(
            row, geo, grade, reasons, Neighbours(context.latest, None), False, refused, new_country
        )
        # Profiles hold their events unnumbered: the new one's is its id once stored.
        stored = replace(current, occurred_at=as_utc(at), success=row["success"])
        user_ids = {subject: row["user_id"]} if row["user_id"] is not None else {}
        known = [subject] if saved else []
        # A Core INSERT, not an ORM add and flush: the row is written once and nothing in this
        # transaction changes it through the session (mark_failed says so explicitly).
        if after is None:
            # The usual case, the subject's newest event: it and the profile it ends are
            # written together (one round trip on PostgreSQL).
            profile = profile.after(stored, grade, self.settings)
            saving = profile_rows({subject: profile}, known, user_ids)
            row["id"] = await repo.insert_with_profile(row, *saving)
        else:
            row["id"] = await repo.insert_one(row)
            profile = profile.after(stored, grade, self.settings)
            profile = await self._regrade_after(repo, recorded.event, profile)
            recorded.neighbours = Neighbours(context.latest, to_travel(after))
            await save_profiles(repo, {subject: profile}, known, user_ids)
        await notify_inserted(self.observers, session, [row])
        return recorded

    async def reviewed(self, session: AsyncSession, event: LoginEvent) -> None:
        """An admin's review of `event` (its `review` set) counts from now on: the subject's
        profile is rebuilt from its events, where that review now proves (or disowns) the
        login's place and network. Verdicts already given stay as they are."""
        repo = LoginEventRepository(session)
        subject = event.subject
        await repo.lock_subject(subject)
        saved = (await repo.profiles_of([subject])).get(subject)
        profiles = await replayed_profiles(repo, [subject], END_OF_TIME, self.settings, True)
        if subject in profiles:
            user_ids = {subject: event.user_id} if event.user_id is not None else {}
            await save_profiles(repo, profiles, [subject] if saved else [], user_ids)

    async def judge_now(
        self, session: AsyncSession, subject: str, ip: str | None, at: datetime
    ) -> tuple[Grade, bool] | None:
        """How a success of `subject` from `ip` at `at` would be judged (its grade, and whether
        it comes from a new country), storing nothing: a refresh from a new place. None when
        the subject has no stored profile to judge it against."""
        saved = (await LoginEventRepository(session).profiles_of([subject])).get(subject)
        profile = Profile.from_doc(saved[1]) if saved is not None else None
        if profile is None:
            return None
        geo = self.locate(ip)
        columns = geo_columns(geo)
        place = place_from_columns(
            columns["located"],
            columns.get("latitude"),
            columns.get("longitude"),
            columns.get("accuracy_radius_km"),
            columns.get("country_iso"),
            columns.get("city_name"),
        )
        if profile.latest is not None:  # never before what it is judged against (clock skew)
            at = max(at, as_utc(profile.latest.occurred_at))
        current = TravelEvent("now", at, LAST_ARRIVAL, place, True, ip, columns.get("asn"))
        context = profile.context(at, self.settings)
        grade, _ = judge(current, context.anchor, context.history, self.settings)
        return grade, is_new_country(place, context.history)

    async def confirmed(
        self, session: AsyncSession, event_uuid: str, at: datetime
    ) -> LoginEvent | None:
        """A sign-in held back for a second factor (stored as a failure) passed it: it becomes
        the success it was, reviewed `safe` by the user who proved it, so its place is known
        and it anchors the next journey (the profile is rebuilt). None when it is gone."""
        repo = LoginEventRepository(session)
        event = await repo.by_uuid(event_uuid)
        if event is None:
            return None
        await repo.lock_subject(event.subject)
        await session.refresh(event)
        was_success = event.success
        event.success, event.failure_reason = True, None
        event.review, event.reviewed_at = "safe", at
        await session.flush()
        if not was_success:
            await self._outcome_changed(session, event.id, event.verdict, was_success)
        await self.reviewed(session, event)
        return event

    def _new_row(self, report: LoginReport, geo: GeoResult | None) -> dict[str, Any]:
        """The new event's columns, all but its id (each one set: observers read them all)."""
        return {
            **EMPTY_ROW,
            "event_uuid": report.event_uuid or uuid.uuid4().hex,
            "subject": report.subject,
            "user_id": report.user_id,
            "source": report.source,
            "occurred_at": report.occurred_at,
            "received_at": utcnow(),
            "success": report.success,
            "failure_reason": report.failure_reason,
            "ip": geo.ip if geo is not None else report.ip,
            "user_agent": (report.user_agent or "")[:512] or None,
            "body_digest": report.body_digest,
            **geo_columns(geo),
        }

    async def mark_failed(self, session: AsyncSession, recorded: Recorded, reason: str) -> None:
        """A success just recorded turned out to be a failure for `reason` after all (the
        account changed while its password was hashed)."""
        was_success = bool(recorded.columns["success"])
        recorded.columns.update(success=False, failure_reason=reason)
        if recorded._event is not None:
            recorded._event.success, recorded._event.failure_reason = False, reason
        await LoginEventRepository(session).set_outcome(recorded.columns["id"], False, reason)
        if was_success:
            await self._outcome_changed(
                session, recorded.columns["id"], recorded.columns.get("verdict"), was_success
            )

    async def _outcome_changed(
        self, session: AsyncSession, row_id: int, verdict: str | None, was_success: bool
    ) -> None:
        """Observers counted the event with its first outcome (the rollups: as a failure,
        or as a success): they move it, its verdict unchanged."""
        kept = verdict or Grade.NONE.value
        change = VerdictChange(row_id, kept, kept, old_success=was_success)
        await notify_regraded(self.observers, session, [change])

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
        columns = {c.key: getattr(existing, c.key) for c in LoginEvent.__table__.columns}
        return Recorded(
            columns,
            None,
            grade,
            existing.verdict_reasons,
            neighbours,
            replay=True,
            refused=None,
            _event=existing,
        )

    async def _regrade_after(
        self, repo: LoginEventRepository, event: LoginEvent, profile: Profile
    ) -> Profile:
        """An event stored before others of its subject may change their verdicts (a success
        can be a new anchor, a new known place, a new learning step): judge what follows it
        again from `profile`, the profile up to and including it. Returns the profile after
        all of the subject's events."""
        later = await repo.following(event, REGRADE_WINDOW)
        verdicts, final = profile.judge([to_travel(e) for e in later], self.settings)
        changes = []
        for row in later:
            grade, reasons = verdicts[row.event_uuid]
            if (row.verdict, row.verdict_reasons) != (grade.value, reasons):
                changes.append(VerdictChange(row.id, row.verdict, grade.value))
                await repo.set_verdict(row.id, grade.value, reasons)
        await notify_regraded(self.observers, repo.session, changes)
        if len(later) < REGRADE_WINDOW:
            return final
        # More events follow than were judged again: the profile of them all, from the events.
        rebuilt = await replayed_profiles(repo, [event.subject], END_OF_TIME, self.settings, True)
        return rebuilt[event.subject]

    async def history_of(
        self, session: AsyncSession, user_id: uuid.UUID, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        return await LoginEventRepository(session).history(user_id, before_id, limit)
