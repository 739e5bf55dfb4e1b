"""The sink port: hand one message to a subscriber and report what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


# One of each per attempt: slotted, not frozen (a frozen dataclass's __init__ costs ~0.3 us a
# field; delivery/records.py).
@dataclass(slots=True)
class Message:
    event_id: str
    event_type: str
    target: str  # a webhook URL or a JetStream subject prefix
    body: bytes
    # Standard Webhooks headers for HTTP; NATS carries the event id as Nats-Msg-Id.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SendResult:
    """`status` is the HTTP status, or 200 for a broker's publish ack; None when nothing
    answered (then `error` says why)."""

    status: int | None
    duration_ms: int
    retry_after_s: float | None = None
    timed_out: bool = False
    error: str | None = None
    response: str | None = None


class Sink(Protocol):
    async def send(self, message: Message) -> SendResult: ...

    async def close(self) -> None: ...
