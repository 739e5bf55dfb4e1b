"""Announcing travel verdicts: `login.flagged` and `login.cleared` in the outbox, written in
the transaction that stores the verdict, whichever path graded it (own sign-ins, `POST /v1/`,
`POST /api/v1/login-events`, Auth0 log streams and imports, demo data) and whenever it
changes (a late arrival's re-grade, an admin's review).

`VerdictAnnouncer` is a `LoginEventObserver` (travel.observers): both recording paths tell it
of every new row and every changed verdict.

- New row graded `suspicious` or `impossible` → `login.flagged`, cause "arrival".
- Re-grade to a flagged verdict from any other verdict → `login.flagged`, cause "regrade"
  (`previous_verdict` says what it was); from a flagged verdict to one that is not →
  `login.cleared`, cause "regrade". A re-grade that keeps the verdict announces nothing.
- `announce_review(session, row, "cleared")`: an admin found a flagged login safe →
  `login.cleared`, cause "review" (`verdict` stays the stored grade; `review` is "safe").

Envelope: aggregate_type "login", aggregate_id the login's event_uuid, user_id when the login
is linked to a Globeguard user, actor "system:travel" (or the reviewer). Payload keys (stable;
a value may be null, a key is never missing):

    {"login_id": 42, "event_uuid": "8ae38b0c-…", "source": "superman",
     "subject": "bob", "user_id": null, "occurred_at": "2018-01-01T01:13:20Z",
     "success": true, "failure_reason": null, "ip": "42.222.21.19",
     "verdict": "impossible", "previous_verdict": null, "cause": "arrival", "review": null,
     "travel": {"origin_event_uuid": "85ad929a-…", "distance_km": 11770.3,
                "adjusted_distance_km": 10720.3, "elapsed_seconds": 4400.0,
                "speed_mph": 5971.2, "speed_kmh": 9609.6, "adjusted_speed_mph": 5438.9,
                "adjusted_speed_kmh": 8753.0, "threshold_mph": 500.0, "threshold_kmh": 804.7,
                "raw_grade": "impossible", "lowered_by": null},
     "journey": {"origin": PLACE, "destination": PLACE}}

    PLACE = {"event_uuid", "occurred_at", "ip", "city_name", "city_geoname_id",
             "subdivision_iso", "subdivision_name", "subdivision_geoname_id", "country_iso",
             "country_geoname_id", "lat", "lon", "accuracy_radius_km"}

`travel` is null when the verdict has no journey; its numbers are null when the journey could
not be measured. The destination is the login itself; the origin is the login the journey
starts from (its anchor, `verdict_reasons["earlier"]`), read from its stored row, or, if that
row is gone, what the verdict recorded of it (lat, lon, radius, country, city name; ids and
region null). `subdivision_name` is the region's English name ("Tokyo" for `subdivision_iso`
"13"), null for a login stored before region names were.
`journey.origin` is null when the verdict has no anchor. `login_id` is null only for demo data.

Personal data: `subject` (often an email), `ip` and `journey` (places and addresses) are in
`events.envelope.PII_KEYS`, so subscribers without `include_pii` get the verdict and the
numbers but not who or where.

Metrics (counted when the transaction that graded commits, so a rolled-back batch, or one the
`/v1/` batcher stores again event by event, is not counted twice):

    globeguard_login_verdicts_total{verdict,source}                   every new graded login
    globeguard_login_regrades_total{verdict,previous_verdict,source}  every verdict a late
                                                                      arrival changed
"""

from __future__ import annotations

import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from prometheus_client import Counter
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from globeguard.events.catalog import EventType
from globeguard.events.outbox import event_row, record_many
from globeguard.kit.clock import as_utc
from globeguard.observability.metrics import Metrics
from globeguard.travel.announce_repository import AnnounceRepository
from globeguard.travel.detect import anchor_of
from globeguard.travel.geo_math import KM_PER_MILE
from globeguard.travel.models import LoginEvent
from globeguard.travel.observers import VerdictChange

FLAGGED = frozenset({"suspicious", "impossible"})
ACTOR = "system:travel"
LOGIN_VERDICTS_TOTAL = "globeguard_login_verdicts_total"
LOGIN_REGRADES_TOTAL = "globeguard_login_regrades_total"

Cause = Literal["arrival", "regrade", "review"]
ReviewKind = Literal["cleared"]
Row = Mapping[str, Any]
# A row's verdict and source (arrivals), or its new and old verdict and source (re-grades).
CountKey = tuple[str, ...]

_PENDING = "globeguard.pending_verdict_counts"
_MEASURES = ("distance_km", "adjusted_distance_km", "elapsed_seconds")
_SPEEDS = ("speed", "adjusted_speed", "threshold")


@dataclass(slots=True)
class Announcements:
    """A batch's `summarise` result: the payloads of its flagged logins (demo data, graded in
    another process) and its verdict counts. Picklable."""

    payloads: list[dict[str, Any]] = field(default_factory=list)
    counts: Tally[CountKey] = field(default_factory=Tally)


class VerdictCounter:
    """The verdict counters. A transaction's counts wait in its session and are added when
    it commits; a rollback drops them."""

    def __init__(self, metrics: Metrics, session_class: type[Session]) -> None:
        self.verdicts = Counter(
            LOGIN_VERDICTS_TOTAL.removesuffix("_total"),
            "Logins graded when they arrived, by verdict and source",
            ["verdict", "source"],
            registry=None,
        )
        self.regrades = Counter(
            LOGIN_REGRADES_TOTAL.removesuffix("_total"),
            "Verdicts a late-arriving login changed, by new and previous verdict and source",
            ["verdict", "previous_verdict", "source"],
            registry=None,
        )
        metrics.register_collector(self.verdicts)
        metrics.register_collector(self.regrades)
        sa_event.listen(session_class, "after_commit", self._committed)
        sa_event.listen(session_class, "after_rollback", _forget)

    @staticmethod
    def pend(session: AsyncSession, counts: Mapping[CountKey, int]) -> None:
        if counts:
            session.info.setdefault(_PENDING, Tally()).update(counts)

    def _committed(self, session: Session) -> None:
        for key, count in session.info.pop(_PENDING, {}).items():
            family = self.verdicts if len(key) == 2 else self.regrades
            family.labels(*key).inc(count)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


class VerdictAnnouncer:
    """Turns verdicts into outbox events (see the module doc); counts them when given a
    `VerdictCounter`."""

    def __init__(self, counter: VerdictCounter | None = None) -> None:
        self.counter = counter

    def __reduce__(self) -> tuple[type[VerdictAnnouncer], tuple[()]]:
        # Sent to the demo data producer, which only summarises: no counters, no listeners.
        return (VerdictAnnouncer, ())

    async def inserted(self, session: AsyncSession, rows: Sequence[Row]) -> None:
        self._pend(session, _arrival_counts(rows))
        flagged = [row for row in rows if row["verdict"] in FLAGGED]
        if not flagged:
            return
        stored = await _stored_for(AnnounceRepository(session), flagged, rows)
        events = []
        for row in flagged:
            row = _with_id(row, stored)
            payload = _payload(row, _origin(row, stored), cause="arrival")
            events.append(_event(EventType.LOGIN_FLAGGED, row, payload))
        await record_many(session, events)

    def summarise(self, rows: Sequence[Row], owners: Mapping[str, Any]) -> Announcements:
        in_batch = _anchors_in(rows, [row for row in rows if row["verdict"] in FLAGGED])
        return Announcements(
            payloads=[
                _payload(row, _origin(row, in_batch), cause="arrival")
                for row in rows
                if row["verdict"] in FLAGGED
            ],
            counts=_arrival_counts(rows),
        )

    async def apply(self, session: AsyncSession, summary: Announcements) -> None:
        """Written after the summarised rows: their ids are read back in one query."""
        self._pend(session, summary.counts)
        if not summary.payloads:
            return
        uuids = [p["event_uuid"] for p in summary.payloads]
        stored = await AnnounceRepository(session).by_uuids(uuids)
        events = []
        for payload in summary.payloads:
            found = stored.get(payload["event_uuid"])
            payload = {**payload, "login_id": found["id"] if found else None}
            user_id = payload["user_id"]
            row = {"event_uuid": payload["event_uuid"], "user_id": user_id and uuid.UUID(user_id)}
            events.append(_event(EventType.LOGIN_FLAGGED, row, payload))
        await record_many(session, events)

    async def regraded(self, session: AsyncSession, changes: Sequence[VerdictChange]) -> None:
        moved = {c.row_id: c for c in changes if c.old != c.new}
        if not moved:
            return
        repo = AnnounceRepository(session)
        rows = await repo.by_ids(moved)
        self._pend(session, Tally(_regrade_key(row, moved[row["id"]]) for row in rows))
        heard = [
            row for row in rows if FLAGGED.intersection((moved[row["id"]].old, row["verdict"]))
        ]
        if not heard:
            return
        anchors = await repo.by_uuids({u for row in heard if (u := _anchor_uuid(row))})
        events = []
        for row in heard:
            previous = moved[row["id"]].old
            payload = _payload(row, _origin(row, anchors), cause="regrade", previous=previous)
            kind = EventType.LOGIN_FLAGGED if row["verdict"] in FLAGGED else EventType.LOGIN_CLEARED
            events.append(_event(kind, row, payload))
        await record_many(session, events)

    def _pend(self, session: AsyncSession, counts: Mapping[CountKey, int]) -> None:
        if self.counter is not None:
            self.counter.pend(session, counts)


async def announce_review(
    session: AsyncSession, row: LoginEvent | Row, kind: ReviewKind, *, actor: str = ACTOR
) -> str:
    """Announce an admin's review of a login: "cleared" (reviewed `safe`) writes
    `login.cleared` with cause "review". Returns the event's id."""
    if kind != "cleared":
        raise ValueError(f"unknown review announcement {kind!r}")
    columns = row if isinstance(row, Mapping) else _columns(row)
    anchor_uuid = _anchor_uuid(columns)
    anchors = await AnnounceRepository(session).by_uuids([anchor_uuid] if anchor_uuid else [])
    payload = _payload(columns, _origin(columns, anchors), cause="review", review="safe")
    event = _event(EventType.LOGIN_CLEARED, columns, payload, actor=actor)
    await record_many(session, [event])
    return str(event["event_id"])


# --- what is read --------------------------------------------------------------------------


def _arrival_counts(rows: Iterable[Row]) -> Tally[CountKey]:
    return Tally((row["verdict"] or "none", row["source"]) for row in rows)


def _regrade_key(row: Row, change: VerdictChange) -> CountKey:
    return (change.new or "none", change.old or "none", row["source"])


def _anchor_uuid(row: Row) -> str | None:
    return anchor_of(row.get("verdict_reasons"))


def _anchors_in(rows: Sequence[Row], flagged: Sequence[Row]) -> dict[str, Row]:
    """The anchors of `flagged` that are rows of the same batch."""
    wanted = {u for row in flagged if (u := _anchor_uuid(row))}
    return {row["event_uuid"]: row for row in rows if row["event_uuid"] in wanted}


async def _stored_for(
    repo: AnnounceRepository, flagged: Sequence[Row], rows: Sequence[Row]
) -> dict[str, Row]:
    """Rows by event_uuid: the anchors of `flagged` (from the batch, else stored) and the
    stored copies of flagged rows whose id the bulk path did not read back. One query."""
    found = _anchors_in(rows, flagged)
    wanted = {u for row in flagged if (u := _anchor_uuid(row)) and u not in found}
    wanted.update(row["event_uuid"] for row in flagged if row.get("id") is None)
    if wanted:
        found.update(await repo.by_uuids(wanted))
    return found


def _with_id(row: Row, stored: Mapping[str, Row]) -> Row:
    if row.get("id") is not None:
        return row
    copy = stored.get(row["event_uuid"])
    return {**row, "id": copy["id"] if copy else None}


def _columns(event: LoginEvent) -> dict[str, Any]:
    return {column.key: getattr(event, column.key) for column in LoginEvent.__table__.columns}


# --- what is written -----------------------------------------------------------------------


def _event(
    kind: EventType, row: Row, payload: dict[str, Any], actor: str = ACTOR
) -> dict[str, Any]:
    return event_row(
        kind,
        actor=actor,
        aggregate_type="login",
        aggregate_id=row["event_uuid"],
        user_id=row.get("user_id"),
        payload=payload,
    )


def _payload(
    row: Row,
    origin: dict[str, Any] | None,
    *,
    cause: Cause,
    previous: str | None = None,
    review: str | None = None,
) -> dict[str, Any]:
    user_id = row.get("user_id")
    return {
        "login_id": row.get("id"),
        "event_uuid": row["event_uuid"],
        "source": row["source"],
        "subject": row["subject"],
        "user_id": None if user_id is None else str(user_id),
        "occurred_at": _time(row["occurred_at"]),
        "success": row["success"],
        "failure_reason": row.get("failure_reason"),
        "ip": row.get("ip"),
        "verdict": row["verdict"],
        "previous_verdict": previous,
        "cause": cause,
        "review": review,
        "travel": _travel(row.get("verdict_reasons")),
        "journey": {"origin": origin, "destination": _place(row)},
    }


def _travel(reasons: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not reasons or "raw_grade" not in reasons:
        return None
    numbers: dict[str, Any] = {"origin_event_uuid": anchor_of(reasons)}
    numbers.update({key: reasons.get(key) for key in _MEASURES})
    for speed in _SPEEDS:
        mph = reasons.get(f"{speed}_mph")
        numbers[f"{speed}_mph"] = mph
        numbers[f"{speed}_kmh"] = None if mph is None else mph * KM_PER_MILE
    numbers["raw_grade"] = reasons.get("raw_grade")
    numbers["lowered_by"] = reasons.get("lowered_by")
    return numbers


def _origin(row: Row, stored: Mapping[str, Row]) -> dict[str, Any] | None:
    """The anchor's place: its stored row, else what the verdict recorded of it."""
    anchor_uuid = _anchor_uuid(row)
    if anchor_uuid is None:
        return None
    if (anchor := stored.get(anchor_uuid)) is not None:
        return _place(anchor)
    recorded = (row.get("verdict_reasons") or {}).get("origin") or {}
    return {
        "event_uuid": anchor_uuid,
        "occurred_at": None,
        "ip": None,
        "city_name": recorded.get("city"),
        "city_geoname_id": None,
        "subdivision_iso": None,
        "subdivision_name": None,
        "subdivision_geoname_id": None,
        "country_iso": recorded.get("country"),
        "country_geoname_id": None,
        "lat": recorded.get("lat"),
        "lon": recorded.get("lon"),
        "accuracy_radius_km": recorded.get("radius_km"),
    }


def _place(row: Row) -> dict[str, Any]:
    return {
        "event_uuid": row["event_uuid"],
        "occurred_at": _time(row["occurred_at"]),
        "ip": row.get("ip"),
        "city_name": row.get("city_name"),
        "city_geoname_id": row.get("city_geoname_id"),
        "subdivision_iso": row.get("subdivision_iso"),
        "subdivision_name": row.get("subdivision_name"),
        "subdivision_geoname_id": row.get("subdivision_geoname_id"),
        "country_iso": row.get("country_iso"),
        "country_geoname_id": row.get("country_geoname_id"),
        "lat": row.get("latitude"),
        "lon": row.get("longitude"),
        "accuracy_radius_km": row.get("accuracy_radius_km"),
    }


def _time(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")
