"""Bulk ingestion of login events reported by other IdPs.

Lines are validated one by one (a bad line is reported with its number and reason, never
aborting the rest) and stored in batches: one GeoIP pass, one query for the recorded history
of the batch's subjects, one multi-row INSERT and one multi-row verdict UPDATE per batch.
Each touched subject's timeline is re-graded in full, so out-of-order arrivals inside or
across batches give the same verdicts as posting the events one by one in time order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator, GeoReason, normalise_ip
from globeguard.kit.clock import as_utc
from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.grading import Verdict, judge_timeline
from globeguard.travel.models import LoginEvent
from globeguard.travel.repository import KNOWN_PLACES_WINDOW, LoginEventRepository
from globeguard.travel.service import geo_columns, place_of, to_travel
from globeguard.travel.timeline import History, TravelEvent

# 9999-12-31T23:59:59Z: a larger number is a millisecond timestamp or garbage.
MAX_UNIX_TIMESTAMP = 253_402_300_799
# A line longer than this is rejected without being buffered whole.
MAX_LINE_BYTES = 64 * 1024
BATCH_SIZE = 1000
# Errors listed in a report; the count covers all. Keeps the response bounded however bad the
# input is.
MAX_ERRORS_LISTED = 1000

TABLE = cast(Table, LoginEvent.__table__)
_INSERT = insert(TABLE).returning(TABLE.c.id, sort_by_parameter_order=True)
_SET_VERDICT = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("row_id"))
    .values(verdict=bindparam("new_verdict"), verdict_reasons=bindparam("new_reasons"))
)


class IncomingEvent(BaseModel):
    """One reported login. Field names follow the common IdP spellings."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    subject: str = Field(
        min_length=1,
        max_length=320,
        validation_alias=AliasChoices("subject", "username", "user_name", "user"),
    )
    occurred_at: datetime = Field(
        validation_alias=AliasChoices("occurred_at", "timestamp", "unix_timestamp", "date", "time")
    )
    ip: str = Field(min_length=1, max_length=64, validation_alias=AliasChoices("ip", "ip_address"))
    success: bool = True
    event_uuid: str | None = Field(
        default=None, min_length=1, max_length=64, validation_alias=AliasChoices("event_uuid", "id")
    )
    user_agent: str | None = Field(default=None, max_length=512)
    failure_reason: str | None = Field(default=None, max_length=64)

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
            if not 0 < value <= MAX_UNIX_TIMESTAMP:
                raise ValueError("unix timestamp out of range (seconds, not milliseconds)")
            return datetime.fromtimestamp(value, tz=UTC)
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

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


class BulkIngestor:
    def __init__(self, locator: GeoLocator, settings: TravelSettings) -> None:
        self.locator = locator
        self.settings = settings

    async def store(
        self,
        session: AsyncSession,
        batch: Sequence[tuple[int, IncomingEvent]],
        source: str,
        report: IngestReport,
    ) -> dict[str, tuple[LoginEvent, Verdict]]:
        """Store one batch in the caller's transaction; returns the new rows by event_uuid,
        each with its assessment."""
        fresh = await self._drop_known(session, batch, report)
        if not fresh:
            return {}
        geo = self.locator.locate_many(e.ip for _, e, _ in fresh)
        rows = []
        for line, event, digest in fresh:
            found = geo[event.ip]
            if found.reason is GeoReason.INVALID:
                report.reject(line, f"ip: '{event.ip}' is not an IP address")
                continue
            rows.append(self._row(event, digest, found, source))
        if not rows:
            return {}
        await self._lock(session, {r["subject"] for r in rows})
        ids = (await session.execute(_INSERT, rows)).scalars().all()
        inserted = {row["event_uuid"]: row_id for row, row_id in zip(rows, ids, strict=True)}
        report.accepted += len(rows)
        start = min(r["occurred_at"] for r in rows)
        subjects = {r["subject"] for r in rows}
        return await self._grade(session, set(inserted), subjects, start, report)

    async def _drop_known(
        self,
        session: AsyncSession,
        batch: Sequence[tuple[int, IncomingEvent]],
        report: IngestReport,
    ) -> list[tuple[int, IncomingEvent, str]]:
        """Replays (same uuid, same event) count as duplicates; the same uuid for another
        event is a line error. Events without a uuid get one. Each kept event comes with its
        digest."""
        uuids = [e.event_uuid for _, e in batch if e.event_uuid]
        known: dict[str, str | None] = {}
        if uuids:
            query = select(TABLE.c.event_uuid, TABLE.c.body_digest).where(
                TABLE.c.event_uuid.in_(uuids)
            )
            known = {u: d for u, d in (await session.execute(query)).all()}
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
            fresh.append((line, event.model_copy(update={"event_uuid": event_uuid}), digest))
        return fresh

    async def _context(
        self, repo: LoginEventRepository, subjects: set[str], start: datetime
    ) -> dict[str, tuple[History, TravelEvent | None]]:
        """Per subject: the history and the anchor (last success) before `start`."""
        rows_by_subject: dict[str, list[Any]] = defaultdict(list)
        for row in await repo.context_before(subjects, start, KNOWN_PLACES_WINDOW):
            rows_by_subject[row.subject].append(row)
        context = {}
        for subject, window in rows_by_subject.items():
            successes = [r for r in window if r.success]
            places = tuple(p for r in successes if (p := place_of(r)))
            first = window[0].first_success
            history = History(window[0].successes, as_utc(first) if first else None, places)
            anchor_row = successes[0] if successes else None
            if anchor_row is None and history.successes:
                anchor_row = await repo.last_success_before(subject, start)
            context[subject] = (history, to_travel(anchor_row) if anchor_row else None)
        return context

    @staticmethod
    def _row(event: IncomingEvent, digest: str, found: Any, source: str) -> dict[str, Any]:
        return {
            "event_uuid": event.event_uuid,
            "subject": event.subject,
            "user_id": None,
            "source": source,
            "occurred_at": event.occurred_at,
            "received_at": datetime.now(UTC),
            "success": event.success,
            "failure_reason": event.failure_reason,
            "ip": found.ip,
            "user_agent": event.user_agent,
            "body_digest": digest,
            "verdict": None,
            "verdict_reasons": None,
            **_all_geo_columns(found),
        }

    @staticmethod
    async def _lock(session: AsyncSession, subjects: Iterable[str]) -> None:
        """PostgreSQL: take every subject's lock in one round trip, in a fixed order so two
        batches never deadlock. SQLite has a single writer already."""
        if session.get_bind().dialect.name != "postgresql":
            return
        keys = sorted(f"login:{s}" for s in subjects)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) k"),
            {"keys": keys},
        )

    async def _grade(
        self,
        session: AsyncSession,
        new_uuids: set[str],
        subjects: set[str],
        start: datetime,
        report: IngestReport,
    ) -> dict[str, tuple[LoginEvent, Verdict]]:
        """Judge the batch's subjects from its earliest event on. What came before is read as
        a bounded context (anchor, known places, success counts), so the cost follows the
        batch, not the length of the subjects' histories."""
        repo = LoginEventRepository(session)
        tail = await repo.tail(subjects, start)
        context = await self._context(repo, subjects, start)
        by_subject: dict[str, list[LoginEvent]] = defaultdict(list)
        for row in tail:
            by_subject[row.subject].append(row)
        changes: list[dict[str, Any]] = []
        graded: dict[str, tuple[LoginEvent, Verdict]] = {}
        for subject, timeline in by_subject.items():
            rows = {r.event_uuid: r for r in timeline}
            history, anchor = context.get(subject, (History(), None))
            verdicts = judge_timeline(
                [to_travel(r) for r in timeline], self.settings, history, anchor
            )
            for key, (grade, reasons) in verdicts.items():
                row = rows[key]
                if key in new_uuids:
                    graded[key] = (row, (grade, reasons))
                    if grade in (Grade.SUSPICIOUS, Grade.IMPOSSIBLE):
                        report.suspicious += 1
                if (row.verdict, row.verdict_reasons) != (grade.value, reasons):
                    changes.append(
                        {"row_id": row.id, "new_verdict": grade.value, "new_reasons": reasons}
                    )
        if changes:
            # Core executemany; the ORM copies loaded above are not marked dirty.
            await session.execute(_SET_VERDICT, changes)
        return graded


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
