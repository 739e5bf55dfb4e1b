"""Bulk ingestion of login events reported by other IdPs.

Lines are validated one by one (a bad line is reported with its number and reason, never
aborting the rest) and stored in batches: one GeoIP pass, one read of the subjects' login
profiles (travel.profile), one multi-row INSERT, one profile write per batch. A subject whose
new events all come after its stored ones is judged from its profile alone; one with an
earlier event is judged from its stored events from that point on (one windowed query for the
past, one for what follows, whose verdicts may change), so out-of-order arrivals inside or
across batches give the same verdicts as posting the events one by one in time order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator, GeoReason, normalise_ip
from globeguard.kit.clock import as_utc
from globeguard.kit.errors import Conflict
from globeguard.kit.limits import StorableText, check_time, time_from_unix
from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.grading import Verdict
from globeguard.travel.observers import (
    LoginEventObserver,
    VerdictChange,
    apply_summaries,
    notify_inserted,
    notify_regraded,
    summarise_inserted,
)
from globeguard.travel.profile import Profile
from globeguard.travel.repository import LoginEventRepository
from globeguard.travel.service import (
    LAST_ARRIVAL,
    geo_columns,
    place_from_columns,
    profile_rows,
    save_profiles,
    to_travel,
    window_profiles,
)
from globeguard.travel.timeline import Neighbours, TravelEvent, sort_timeline

# A line longer than this is rejected without being buffered whole.
MAX_LINE_BYTES = 64 * 1024
BATCH_SIZE = 1000
# Errors listed in a report; the count covers all. Keeps the response bounded however bad the
# input is.
MAX_ERRORS_LISTED = 1000


class IncomingEvent(BaseModel):
    """One reported login. Field names follow the common IdP spellings."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    subject: StorableText = Field(
        min_length=1,
        max_length=320,
        validation_alias=AliasChoices("subject", "username", "user_name", "user"),
    )
    occurred_at: datetime = Field(
        validation_alias=AliasChoices("occurred_at", "timestamp", "unix_timestamp", "date", "time")
    )
    ip: str = Field(min_length=1, max_length=64, validation_alias=AliasChoices("ip", "ip_address"))
    success: bool = True
    event_uuid: StorableText | None = Field(
        default=None, min_length=1, max_length=64, validation_alias=AliasChoices("event_uuid", "id")
    )
    user_agent: StorableText | None = Field(default=None, max_length=512)
    failure_reason: StorableText | None = Field(default=None, max_length=64)

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str) -> str:
        normalised = normalise_ip(value)
        if normalised is None:
            raise ValueError(f"'{value}' is not an IP address")
        return normalised

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _unix_or_iso(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a time, not a boolean")
        if isinstance(value, int | float):
            return time_from_unix(value)
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # UTC, and inside kit.limits' range: travel arithmetic near year 1 or 9999 overflows.
        return check_time(value)

    def digest(self) -> str:
        parts = (self.subject, self.occurred_at.isoformat(), self.ip, str(self.success))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(slots=True)
class LineError:
    line: int
    reason: str


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    suspicious: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    def reject(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(LineError(line, reason))


def parse_line(raw: bytes) -> IncomingEvent:
    """One NDJSON line → an event; ValueError with a readable reason otherwise."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return IncomingEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"{where}: {first['msg']}") from exc


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes | None]]:
    """(line number, content) for each non-blank line of a byte stream; content is None for
    a line over MAX_LINE_BYTES, which is skipped without being held in memory."""
    buffer, number, overlong = b"", 0, False
    async for chunk in chunks:
        buffer += chunk
        while (cut := buffer.find(b"\n")) >= 0:
            line, buffer = buffer[:cut], buffer[cut + 1 :]
            number += 1
            if overlong:
                overlong = False
                yield number, None
            elif line.strip():
                yield number, line
        if len(buffer) > MAX_LINE_BYTES:
            buffer, overlong = b"", True
    if overlong or buffer.strip():
        yield number + 1, None if overlong else buffer


@dataclass(frozen=True, slots=True)
class Fresh:
    """A line that is not a replay: its event, the uuid it is stored under, and its digest."""

    line: int
    event: IncomingEvent
    event_uuid: str
    digest: str


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored event: the columns written, the verdict it was given, and its nearest
    stored neighbours (any outcome) once the batch is in."""

    row: dict[str, Any]
    verdict: Verdict
    current: TravelEvent
    neighbours: Neighbours


@dataclass(frozen=True, slots=True)
class Prepared:
    """Events graded by `BulkIngestor.prepare_new`, ready to store: rows to insert, what
    they change for each observer, each subject's profile once they are stored, and what
    the lines came to."""

    rows: list[dict[str, Any]]
    summaries: tuple[Any, ...]
    # The subjects' new login_profile rows (documents, not Profile objects: cheaper to pass
    # between processes).
    profile_rows: list[dict[str, Any]]
    report: IngestReport


class BulkIngestor:
    def __init__(
        self,
        locator: GeoLocator,
        settings: TravelSettings,
        observers: Sequence[LoginEventObserver] = (),
    ) -> None:
        self.locator = locator
        self.settings = settings
        self.observers = observers

    async def store(
        self,
        session: AsyncSession,
        batch: Sequence[tuple[int, IncomingEvent]],
        source: str,
        report: IngestReport,
        users: Mapping[str, uuid.UUID] | None = None,
    ) -> dict[str, Stored]:
        """Store one batch in the caller's transaction; returns the new events by event_uuid.
        `users` maps subjects that are Globeguard users to their ids (trusted callers only:
        imports, demo data), so those events are theirs (history, erasure) like sign-ins.

        New events are graded before they are written, so each is inserted once with its
        verdict; only stored events that a late arrival re-grades are updated. With the
        subjects locked, the new rows get ids above every stored one, so giving them
        provisional arrival numbers past the stored ids orders them exactly as they will be."""
        repo = LoginEventRepository(session)
        fresh = await self._drop_known(repo, batch, report)
        rows = self._rows(fresh, source, report)
        if not rows:
            return {}
        if users:
            for row in rows:
                row["user_id"] = users.get(row["subject"])
        earliest: dict[str, datetime] = {}
        for row in rows:
            subject, at = row["subject"], row["occurred_at"]
            earliest[subject] = min(at, earliest.get(subject, at))
        await repo.lock_subjects(earliest)
        profiles, behind, existing = await self._profiles(repo, earliest)
        stored: list[Any] = []
        if behind:
            start = min(earliest[s] for s in behind)
            stored = await repo.tail_facts(behind, start)
            profiles.update(await window_profiles(repo, behind, start))
        graded, changes, after = self._grade(rows, stored, profiles, report)
        await repo.insert_many(rows)
        await notify_inserted(self.observers, session, rows)
        if changes:
            await repo.set_verdicts(changes)
            await notify_regraded(
                self.observers,
                session,
                [VerdictChange(c["row_id"], c["old"], c["verdict"]) for c in changes],
            )
        await save_profiles(repo, after, existing, _owners_of(rows))
        report.accepted += len(rows)
        return graded

    def prepare_new(
        self,
        batch: Sequence[tuple[int, IncomingEvent]],
        source: str,
        users: Mapping[str, uuid.UUID],
    ) -> Prepared:
        """Grade a batch of events whose subjects have no stored past, and summarise them
        for the observers, without a database: what `store` does once it has found nothing
        stored. For trusted callers that create the subjects themselves (demo data), so this
        CPU work can run in another process; `store_prepared` checks the premise before
        writing. `users` maps every subject that is a Globeguard user to its id."""
        report = IngestReport()
        fresh = self._number_fresh(batch, {}, report)
        rows = self._rows(fresh, source, report)
        for row in rows:
            row["user_id"] = users.get(row["subject"])
        _, _, after = self._grade(rows, [], {}, report, described=False)
        owners = _owners_of(rows)
        inserts, _ = profile_rows(after, (), owners)
        summaries = summarise_inserted(self.observers, rows, owners)
        return Prepared(rows, summaries, inserts, report)

    async def store_prepared(
        self, session: AsyncSession, prepared: Prepared, report: IngestReport
    ) -> None:
        """Write what `prepare_new` graded, in the caller's transaction (an ingestor with
        the same observers). Conflict when a subject or an event uuid turns out to be stored
        already: the grading assumed neither."""
        repo = LoginEventRepository(session)
        rows = prepared.rows
        subjects = {row["subject"] for row in rows}
        await repo.lock_subjects(subjects)
        if await repo.any_stored(subjects, [row["event_uuid"] for row in rows]):
            raise Conflict(
                "some of these subjects or events are stored already", code="not_new_subjects"
            )
        await repo.insert_many(rows)
        await apply_summaries(self.observers, session, prepared.summaries)
        await repo.save_profiles(prepared.profile_rows, [])
        report.accepted += len(rows)
        report.duplicates += prepared.report.duplicates
        report.suspicious += prepared.report.suspicious
        report.error_count += prepared.report.error_count
        report.errors.extend(prepared.report.errors[: MAX_ERRORS_LISTED - len(report.errors)])

    @staticmethod
    async def _profiles(
        repo: LoginEventRepository, earliest: dict[str, datetime]
    ) -> tuple[dict[str, Profile], set[str], set[str]]:
        """The stored profiles that describe everything before each subject's earliest new
        event; the subjects whose past must be read from their events instead (no profile
        yet, or a new event older than their newest stored one); and the subjects that have
        a stored profile row at all."""
        stored = await repo.profiles_of(earliest)
        profiles = {}
        for subject, (last_at, state) in stored.items():
            if as_utc(last_at) <= earliest[subject]:
                profiles[subject] = Profile.from_doc(state)
        return profiles, set(earliest) - profiles.keys(), set(stored)

    async def _drop_known(
        self,
        repo: LoginEventRepository,
        batch: Sequence[tuple[int, IncomingEvent]],
        report: IngestReport,
    ) -> list[Fresh]:
        """Replays (same uuid, same event) count as duplicates; the same uuid for another
        event is a line error. Events without a uuid get one."""
        uuids = [e.event_uuid for _, e in batch if e.event_uuid]
        known = await repo.digests_of(uuids) if uuids else {}
        return self._number_fresh(batch, known, report)

    @staticmethod
    def _number_fresh(
        batch: Sequence[tuple[int, IncomingEvent]],
        known: dict[str, str | None],
        report: IngestReport,
    ) -> list[Fresh]:
        """The events that are not replays of `known` (uuid → digest) or of each other."""
        fresh = []
        for line, event in batch:
            event_uuid = event.event_uuid or uuid.uuid4().hex
            digest = event.digest()
            if event_uuid in known:
                if known[event_uuid] == digest:
                    report.duplicates += 1
                else:
                    report.reject(line, f"event_uuid '{event_uuid}' was used for another event")
                continue
            known[event_uuid] = digest
            fresh.append(Fresh(line, event, event_uuid, digest))
        return fresh

    def _rows(
        self, fresh: Sequence[Fresh], source: str, report: IngestReport
    ) -> list[dict[str, Any]]:
        """The INSERT parameters of the locatable-or-not events; an address the GeoIP layer
        rejects is a line error."""
        if not fresh:
            return []
        geo = self.locator.locate_many(f.event.ip for f in fresh)
        received_at = datetime.now(UTC)
        rows = []
        for item in fresh:
            found = geo[item.event.ip]
            if found.reason is GeoReason.INVALID:
                report.reject(item.line, f"ip: '{item.event.ip}' is not an IP address")
                continue
            rows.append(_row(item, found, source, received_at))
        return rows

    def _grade(
        self,
        rows: Sequence[dict[str, Any]],
        stored: Sequence[Any],
        profiles: dict[str, Profile],
        report: IngestReport,
        described: bool = True,
    ) -> tuple[dict[str, Stored], list[dict[str, Any]], dict[str, Profile]]:
        """Judge each subject's timeline: its stored events from the batch's start on (only
        for subjects judged from their events; their verdicts may change) merged with the new
        ones. Sets the new rows' verdicts in place; returns them (with their neighbours, unless
        not `described`), the changes to stored rows, and each subject's profile once the
        batch is stored."""
        timelines: dict[str, list[TravelEvent]] = defaultdict(list)
        stored_by_uuid = {}
        for row in stored:
            timelines[row.subject].append(to_travel(row))
            stored_by_uuid[row.event_uuid] = row
        new_by_uuid = {}
        for arrival, row in enumerate(rows, start=LAST_ARRIVAL):
            timelines[row["subject"]].append(_travel_of_new(row, arrival))
            new_by_uuid[row["event_uuid"]] = row
        graded: dict[str, Stored] = {}
        changes: list[dict[str, Any]] = []
        after: dict[str, Profile] = {}
        for subject, unordered in timelines.items():
            profile = profiles.get(subject) or Profile()
            before = profile.context()
            timeline = sort_timeline(unordered)
            verdicts, after[subject] = profile.judge(timeline, self.settings)
            for index, event in enumerate(timeline):
                grade, reasons = verdicts[event.key]
                if (new := new_by_uuid.get(event.key)) is not None:
                    new["verdict"], new["verdict_reasons"] = grade.value, reasons
                    if described:
                        neighbours = _neighbours(timeline, index, before.latest)
                        graded[event.key] = Stored(new, (grade, reasons), event, neighbours)
                    if grade in (Grade.SUSPICIOUS, Grade.IMPOSSIBLE):
                        report.suspicious += 1
                    continue
                old = stored_by_uuid[event.key]
                if (old.verdict, old.verdict_reasons) != (grade.value, reasons):
                    changes.append(
                        {
                            "row_id": old.id,
                            "verdict": grade.value,
                            "reasons": reasons,
                            "old": old.verdict,
                        }
                    )
        return graded, changes, after


def _owners_of(rows: Sequence[dict[str, Any]]) -> dict[str, uuid.UUID]:
    return {r["subject"]: r["user_id"] for r in rows if r["user_id"] is not None}


def _neighbours(
    timeline: Sequence[TravelEvent], index: int, latest_before: TravelEvent | None
) -> Neighbours:
    """`timeline` holds every event of the subject from the batch's start on, in order."""
    preceding = timeline[index - 1] if index > 0 else latest_before
    subsequent = timeline[index + 1] if index + 1 < len(timeline) else None
    return Neighbours(preceding, subsequent)


def _row(item: Fresh, found: Any, source: str, received_at: datetime) -> dict[str, Any]:
    event = item.event
    return {
        "event_uuid": item.event_uuid,
        "subject": event.subject,
        "user_id": None,
        "source": source,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        "success": event.success,
        "failure_reason": event.failure_reason,
        "ip": found.ip,
        "user_agent": event.user_agent,
        "body_digest": item.digest,
        "verdict": None,
        "verdict_reasons": None,
        **_all_geo_columns(found),
    }


def _travel_of_new(row: dict[str, Any], arrival: int) -> TravelEvent:
    place = place_from_columns(
        row["located"],
        row["latitude"],
        row["longitude"],
        row["accuracy_radius_km"],
        row["country_iso"],
        row["city_name"],
    )
    return TravelEvent(
        row["event_uuid"], row["occurred_at"], arrival, place, row["success"], row["ip"]
    )


def _all_geo_columns(found: Any) -> dict[str, Any]:
    """Every geo column, present even when empty: a multi-row INSERT needs one key set."""
    columns = dict.fromkeys(
        (
            "latitude",
            "longitude",
            "accuracy_radius_km",
            "country_iso",
            "country_geoname_id",
            "subdivision_iso",
            "subdivision_geoname_id",
            "city_name",
            "city_geoname_id",
            "time_zone",
            "asn",
            "geo_reason",
        ),
    )
    columns.update(geo_columns(found))
    return columns
