"""What the delivery ledger hands out and takes in: plain values, no ORM objects.

The values made once per delivery attempt (Claimed, EventRow, Settlement, and jobs.Job,
port.Message, port.SendResult, wire.Answer on the way) are slotted dataclasses that are not
frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, ~0.3 us a
field here, and an attempt makes about fifty fields' worth (~15 us, a tenth of the server's
CPU per delivery). Nobody changes them after they are made; they are not hashed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PENDING, INFLIGHT, SUCCEEDED, DEAD = "pending", "inflight", "succeeded", "dead"
OPEN_STATUSES = (PENDING, INFLIGHT)


@dataclass(frozen=True, slots=True)
class FanoutEvent:
    seq: int
    type: str
    ordering_key: str


@dataclass(slots=True)
class Claimed:
    id: int
    event_seq: int
    subscription_id: uuid.UUID
    attempts: int


@dataclass(slots=True)
class EventRow:
    """The outbox columns a delivery's body is made of (envelope.OutboxRow)."""

    seq: int
    event_id: str
    type: str
    aggregate_type: str
    aggregate_id: str | None
    aggregate_version: int | None
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(slots=True)
class Settlement:
    """How one attempt ends in the ledger; written with its attempt row."""

    delivery_id: int
    subscription_id: uuid.UUID
    owner: str
    status: str
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    dead_reason: str | None
    finished_at: datetime | None
    # the attempt row
    attempted_at: datetime
    duration_ms: int
    outcome: str
    response: str | None
    # A 410 answer: the subscription is disabled in the same transaction.
    disable_subscription: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionBacklog:
    subscription_id: uuid.UUID
    oldest_open: datetime | None
    dead: int


def ordering_key(user_id: uuid.UUID | None, aggregate_type: str, aggregate_id: str | None) -> str:
    if user_id is not None:
        return str(user_id)
    return f"{aggregate_type}:{aggregate_id or ''}"[:100]
