"""Storing batches of login events: the bulk path of NDJSON streams, imports and `POST /v1/`.

A batch is stored in one transaction, with a fixed number of statements whatever its size:
one replay check, one read of the subjects' login profiles (travel.profile), one multi-row
INSERT, one profile upsert, and the observers' own. Each address is located once per batch. A
subject whose new events all come after its stored ones is judged from its profile alone;
one with an earlier event is judged from its stored events from that point on (one windowed
query for the past, one for what follows, whose verdicts may change), so out-of-order
arrivals inside or across batches give the same verdicts as posting the events one by one in
time order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.port import GeoLocator
from globeguard.kit.errors import Conflict
from globeguard.settings import TravelSettings
from globeguard.travel.ingest.events import ReportedLogin, digest
from globeguard.travel.ingest.grade import Graded, Stored, grade_batch
from globeguard.travel.ingest.report import MAX_ERRORS_LISTED, IngestReport
from globeguard.travel.ingest.rows import Fresh, Locations, NewRows, new_rows
from globeguard.travel.linking import SubjectLinker
from globeguard.travel.observers import (
    LoginEventObserver,
    VerdictChange,
    apply_summaries,
    notify_inserted,
    notify_regraded,
    summarise_inserted,
)
from globeguard.travel.profile import Profile
from globeguard.travel.profile_store import ProfileStore
from globeguard.travel.replay import profile_rows, replayed_profiles
from globeguard.travel.repository import LoginEventRepository

BATCH_SIZE = 1000

Numbered = tuple[int, ReportedLogin]


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
        linker: SubjectLinker | None = None,
    ) -> None:
        self.locator = locator
        self.settings = settings
        self.observers = observers
        # Gives each reported login to the user its subject names.
        self.linker = linker
        self.profiles = ProfileStore()
        self.locations = Locations()

    async def store(
        self,
        session: AsyncSession,
        batch: Sequence[Numbered],
        source: str,
        report: IngestReport,
        users: Mapping[str, uuid.UUID] | None = None,
        *,
        described: bool = True,
    ) -> dict[str, Stored]:
        """Store one batch in the caller's transaction; returns the new events by event_uuid
        (none unless `described`: callers that only count spare working out neighbours).
        `users` maps subjects that are Globeguard users to their ids (trusted callers only:
        imports, demo data), so those events are theirs (history, erasure) like sign-ins.

        New events are graded before they are written, so each is inserted once with its
        verdict; only stored events that a late arrival re-grades are updated. With the
        subjects locked, the new rows get ids above every stored one, so giving them
        provisional arrival numbers past the stored ids orders them exactly as they will be."""
        repo = LoginEventRepository(session)
        fresh = await self._drop_known(repo, batch, report)
        new = new_rows(self.locator, self.locations, fresh, source, report)
        rows = new.rows
        if not rows:
            return {}
        owners = await self._owners(session, rows, users or {})
        if owners:
            for row in rows:
                row["user_id"] = owners.get(row["subject"])
        earliest: dict[str, datetime] = {}
        for row in rows:
            subject, at = row["subject"], row["occurred_at"]
            if subject not in earliest or at < earliest[subject]:
                earliest[subject] = at
        await repo.lock_subjects(earliest)
        graded = await self._grade(session, repo, new, earliest, described)
        await repo.insert_many(rows)
        await notify_inserted(self.observers, session, rows)
        if changes := graded.changes:
            await repo.set_verdicts(changes)
            regraded = [VerdictChange(c["row_id"], c["old"], c["verdict"]) for c in changes]
            await notify_regraded(self.observers, session, regraded)
        await self.profiles.write(session, graded.profiles, _owners_of(rows))
        report.accepted += len(rows)
        report.suspicious += graded.suspicious
        return graded.stored

    async def _grade(
        self,
        session: AsyncSession,
        repo: LoginEventRepository,
        new: NewRows,
        earliest: dict[str, datetime],
        described: bool,
    ) -> Graded:
        """The stored profiles that describe everything before each subject's earliest new
        event; the others (no profile yet, or a new event older than their newest stored
        one) are judged from their stored events from the earliest such event on."""
        profiles: dict[str, Profile] = {}
        for subject, (last_at, profile) in (await self.profiles.read(session, earliest)).items():
            if last_at <= earliest[subject]:
                profiles[subject] = profile
        behind = set(earliest) - profiles.keys()
        stored: list[Any] = []
        if behind:
            start = min(earliest[s] for s in behind)
            stored = await repo.tail_facts(behind, start)
            profiles.update(await replayed_profiles(repo, behind, start, self.settings))
        events = new.travel_events()
        settings = self.settings
        return grade_batch(new.rows, events, stored, profiles, settings, described)

    async def _owners(
        self,
        session: AsyncSession,
        rows: Sequence[dict[str, Any]],
        users: Mapping[str, uuid.UUID],
    ) -> Mapping[str, uuid.UUID]:
        """The user of each subject that names one: `users` first (the caller's own word),
        then the linker's (one query for the batch)."""
        unknown = {row["subject"] for row in rows} - users.keys()
        if self.linker is None or not unknown:
            return users
        return {**await self.linker.owners(session, unknown), **users}

    def prepare_new(
        self,
        batch: Sequence[Numbered],
        source: str,
        users: Mapping[str, uuid.UUID],
    ) -> Prepared:
        """Grade a batch of events whose subjects have no stored past, and summarise them
        for the observers, without a database: what `store` does once it has found nothing
        stored. For trusted callers that create the subjects themselves (demo data), so this
        CPU work can run in another process; `store_prepared` checks the premise before
        writing. `users` maps every subject that is a Globeguard user to its id."""
        report = IngestReport()
        fresh = _number_fresh(batch, {}, report)
        new = new_rows(self.locator, self.locations, fresh, source, report)
        rows = new.rows
        for row in rows:
            row["user_id"] = users.get(row["subject"])
        graded = grade_batch(rows, new.travel_events(), [], {}, self.settings, described=False)
        report.suspicious += graded.suspicious
        owners = _owners_of(rows)
        inserts, _ = profile_rows(graded.profiles, (), owners)
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
    async def _drop_known(
        repo: LoginEventRepository, batch: Sequence[Numbered], report: IngestReport
    ) -> list[Fresh]:
        """Replays (same uuid, same event) count as duplicates; the same uuid for another
        event is a line error. Events without a uuid get one."""
        uuids = [e.event_uuid for _, e in batch if e.event_uuid]
        known = await repo.digests_of(uuids) if uuids else {}
        return _number_fresh(batch, known, report)


def _number_fresh(
    batch: Sequence[Numbered], known: dict[str, str | None], report: IngestReport
) -> list[Fresh]:
    """The events that are not replays of `known` (uuid → digest) or of each other."""
    fresh = []
    for line, event in batch:
        event_uuid = event.event_uuid or uuid.uuid4().hex
        fingerprint = digest(event)
        if event_uuid in known:
            if known[event_uuid] == fingerprint:
                report.duplicates += 1
            else:
                report.reject(line, f"event_uuid '{event_uuid}' was used for another event")
            continue
        known[event_uuid] = fingerprint
        fresh.append(Fresh(line, event, event_uuid, fingerprint))
    return fresh


def _owners_of(rows: Sequence[dict[str, Any]]) -> dict[str, uuid.UUID]:
    return {r["subject"]: r["user_id"] for r in rows if r["user_id"] is not None}
