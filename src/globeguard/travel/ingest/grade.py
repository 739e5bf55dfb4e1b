"""Grading a batch: each subject's new events, with the stored ones they may re-grade, judged
as one timeline from the profile of what came before it. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade
from globeguard.travel.grading import Verdict
from globeguard.travel.profile import Profile
from globeguard.travel.replay import to_travel
from globeguard.travel.timeline import Neighbours, TravelEvent, sort_timeline

FLAGGED = (Grade.SUSPICIOUS, Grade.IMPOSSIBLE)
EMPTY = Profile()


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored event: the columns written, the verdict it was given, and its nearest
    stored neighbours (any outcome) once the batch is in."""

    row: dict[str, Any]
    verdict: Verdict
    current: TravelEvent
    neighbours: Neighbours


@dataclass(slots=True)
class Graded:
    """What grading a batch came to. The new rows' verdicts are set in place."""

    # The new events by uuid, with their neighbours (when asked for).
    stored: dict[str, Stored]
    # Stored events whose verdict changed: {row_id, verdict, reasons, old}.
    changes: list[dict[str, Any]]
    # Each subject's profile once the batch is stored.
    profiles: dict[str, Profile]
    suspicious: int = 0


def grade_batch(
    rows: Sequence[dict[str, Any]],
    events: Sequence[TravelEvent],
    stored: Sequence[Any],
    profiles: dict[str, Profile],
    settings: TravelSettings,
    described: bool = True,
) -> Graded:
    """Judge each subject's timeline: its stored events from the batch's start on (`stored`,
    only for subjects judged from their events; their verdicts may change) merged with the
    new ones (`rows`, and `events` as grading sees them, in the same order). `profiles` holds
    what came before each subject's timeline."""
    timelines: dict[str, list[TravelEvent]] = defaultdict(list)
    stored_by_uuid = {}
    for row in stored:
        timelines[row.subject].append(to_travel(row))
        stored_by_uuid[row.event_uuid] = row
    new_by_uuid = {}
    for row, event in zip(rows, events, strict=True):
        timelines[row["subject"]].append(event)
        new_by_uuid[event.key] = row
    graded = Graded({}, [], {})
    for subject, unordered in timelines.items():
        profile = profiles.get(subject, EMPTY)
        timeline = sort_timeline(unordered) if len(unordered) > 1 else unordered
        verdicts, graded.profiles[subject] = profile.judge(timeline, settings)
        for index, event in enumerate(timeline):
            grade, reasons = verdict = verdicts[event.key]
            new = new_by_uuid.get(event.key)
            if new is None:
                _compare(stored_by_uuid[event.key], verdict, graded.changes)
                continue
            new["verdict"], new["verdict_reasons"] = grade.value, reasons
            if described:
                neighbours = _neighbours(timeline, index, profile.latest)
                graded.stored[event.key] = Stored(new, verdict, event, neighbours)
            if grade in FLAGGED:
                graded.suspicious += 1
    return graded


def _compare(old: Any, verdict: Verdict, changes: list[dict[str, Any]]) -> None:
    grade, reasons = verdict
    if (old.verdict, old.verdict_reasons) != (grade.value, reasons):
        changes.append(
            {"row_id": old.id, "verdict": grade.value, "reasons": reasons, "old": old.verdict}
        )


def _neighbours(
    timeline: Sequence[TravelEvent], index: int, latest_before: TravelEvent | None
) -> Neighbours:
    """`timeline` holds every event of the subject from the batch's start on, in order."""
    preceding = timeline[index - 1] if index > 0 else latest_before
    subsequent = timeline[index + 1] if index + 1 < len(timeline) else None
    return Neighbours(preceding, subsequent)
