"""What the dispatcher works with between the database and the sinks, without I/O: the
subscriptions of a round, the jobs a claim made, the message each job sends and the
settlement each attempt ends in."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from globeguard.events import envelope
from globeguard.events.delivery.records import (
    DEAD,
    PENDING,
    SUCCEEDED,
    Claimed,
    EventRow,
    Settlement,
)
from globeguard.events.delivery.schedule import Decision, Response, Verdict, decide
from globeguard.events.signing import SigningKey, webhook_headers
from globeguard.events.sinks.port import Message, SendResult
from globeguard.kit.limits import storable
from globeguard.settings import DeliverySettings

_STATUS = {Verdict.SUCCEEDED: SUCCEEDED, Verdict.DEAD: DEAD}


@dataclass(frozen=True, slots=True)
class Target:
    """A subscription as one round sees it, with its signing keys in the clear."""

    id: uuid.UUID
    kind: str
    target: str
    event_types: tuple[str, ...]
    ordered: bool
    include_pii: bool
    rate_limit_per_s: float | None
    max_in_flight: int
    keys: tuple[SigningKey, ...]
    # In a run of failures when the round began (its `failing_since` is set).
    failing: bool = False


@dataclass(slots=True)  # one per attempt: not frozen, see records.py
class Job:
    claimed: Claimed
    target: Target
    event: EventRow
    # The exact bytes sent and signed: made once per event and audience (with or without
    # personal data), however many subscriptions it goes to.
    body: bytes


def targets_from_rows(
    rows: Sequence[Any], reveal: Callable[[str], str], now: datetime
) -> list[Target]:
    """Targets from (subscription, key) rows in subscription then key order (the
    subscription repository's `enabled_with_keys`); expired keys are left out."""
    keys: dict[uuid.UUID, list[SigningKey]] = {}
    subscriptions: dict[uuid.UUID, Any] = {}
    for row in rows:
        subscriptions.setdefault(row.id, row)
        owned = keys.setdefault(row.id, [])
        if row.sealed is not None and (row.expires_at is None or row.expires_at > now):
            owned.append(SigningKey(reveal(row.sealed)))
    return [
        Target(
            id=s.id,
            kind=s.kind,
            target=s.target,
            event_types=tuple(s.event_types),
            ordered=s.ordered,
            include_pii=s.include_pii,
            rate_limit_per_s=s.rate_limit_per_s,
            max_in_flight=s.max_in_flight,
            keys=tuple(keys[s.id]),
            failing=s.failing_since is not None,
        )
        for s in subscriptions.values()
    ]


def make_jobs(claimed: Sequence[tuple[Claimed, Target]], events: dict[int, EventRow]) -> list[Job]:
    bodies: dict[tuple[int, bool], bytes] = {}
    made = []
    for delivery, target in claimed:
        event = events[delivery.event_seq]
        key = (event.seq, target.include_pii)
        body = bodies.get(key)
        if body is None:
            body = bodies[key] = envelope.body(event, include_pii=target.include_pii)
        made.append(Job(delivery, target, event, body))
    return made


def message(job: Job, stamp: int) -> Message:
    """The job's message, signed at `stamp` (seconds): a retry is signed anew."""
    return Message(
        event_id=job.event.event_id,
        event_type=job.event.type,
        target=job.target.target,
        body=job.body,
        headers=webhook_headers(job.event.event_id, stamp, job.body, job.target.keys),
    )


def settlement(
    job: Job,
    result: SendResult,
    *,
    owner: str,
    attempted_at: datetime,
    settled_at: datetime,
    settings: DeliverySettings,
    sample: float,
) -> Settlement:
    """How the attempt ends, by the retry schedule; `sample` (uniform in [-1, 1]) jitters
    the next attempt."""
    decision = decide(
        job.claimed.attempts + 1,
        Response(result.status, result.retry_after_s, result.timed_out),
        settings.retry_schedule,
        jitter=settings.retry_jitter,
        sample=sample,
    )
    status = _STATUS.get(decision.verdict, PENDING)
    return Settlement(
        delivery_id=job.claimed.id,
        subscription_id=job.target.id,
        owner=owner,
        status=status,
        next_attempt_at=next_attempt(decision, settled_at),
        last_status=result.status,
        # A receiver's answer (and an error it provoked) is recorded, never refused: a NUL in
        # it would fail the whole settle on PostgreSQL, cycle after cycle.
        last_error=storable(result.error),
        dead_reason=decision.dead_reason,
        finished_at=settled_at if status != PENDING else None,
        attempted_at=attempted_at,
        duration_ms=result.duration_ms,
        outcome=decision.outcome.value,
        response=storable(result.response),
        disable_subscription=decision.disable_subscription,
    )


def next_attempt(decision: Decision, now: datetime) -> datetime:
    return now + decision.delay if decision.delay is not None else now
