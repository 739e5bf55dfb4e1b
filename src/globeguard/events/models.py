"""The outbox: every security-relevant change is written here in the change's own transaction.

Rows are the audit trail and the source of the delivery pipeline: each subscription gets one
`delivery` per matching event (the per-consumer queue), and each try of it one
`delivery_attempt`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, BigId, JsonDoc, UtcDateTime
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import new_uuid


class OutboxEvent(Base):
    __tablename__ = "event_outbox"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    aggregate_type: Mapped[str] = mapped_column(String(32), nullable=False)
    # The subject's id as text: a user uuid, an api key id, a role id.
    aggregate_id: Mapped[str | None] = mapped_column(String(64))
    aggregate_version: Mapped[int | None] = mapped_column(Integer)
    # The user the event is about, for the audit trail (also set for api_key/role events).
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Who caused it: "user:<id>", "client:<client_id>", "system".
    actor: Mapped[str] = mapped_column(String(80), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_event_outbox_user_id_seq", "user_id", "seq"),
        Index("ix_event_outbox_type_seq", "type", "seq"),
        Index("ix_event_outbox_dispatched_at_seq", "dispatched_at", "seq"),
    )


class Subscription(Base):
    """Where events go: a webhook URL or a NATS JetStream subject prefix."""

    __tablename__ = "subscription"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False)
    # Per-user order: a user's next event waits until the previous one is settled.
    ordered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Whether personal data (username, email, addresses) may be sent to this subscriber.
    include_pii: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float)
    max_in_flight: Mapped[int] = mapped_column(Integer, nullable=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    # Start of the current run of failures (None after a success): auto-disable measures
    # "sustained" from here.
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)


class SubscriptionSecret(Base):
    """A signing key of a subscription, sealed at rest. Several are active while one rotates."""

    __tablename__ = "subscription_secret"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False
    )
    scheme: Mapped[str] = mapped_column(String(8), nullable=False)  # v1 | v1a
    sealed: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    # Set when a newer key replaces this one: signing with both until then lets receivers
    # switch at their own pace.
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_subscription_secret_sub", "subscription_id", "id"),)


class Delivery(Base):
    """One event for one subscription: the unit that is claimed, attempted and redriven."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_seq: Mapped[int] = mapped_column(
        BigId, ForeignKey("event_outbox.seq", ondelete="CASCADE"), nullable=False
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False
    )
    # Whose events must stay in order on an ordered subscription (the user, else the subject).
    ordering_key: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Leases that expired on this delivery: a worker died (or hung) while holding it.
    lease_expiries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    dead_reason: Mapped[str | None] = mapped_column(String(32))
    redrives: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("event_seq", "subscription_id", name="uq_delivery_event_subscription"),
        Index("ix_delivery_due", "subscription_id", "status", "next_attempt_at"),
        Index("ix_delivery_order", "subscription_id", "ordering_key", "event_seq"),
        Index("ix_delivery_lease", "status", "lease_until"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("delivery.id", ondelete="CASCADE"), nullable=False
    )
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    # The start of the receiver's answer, for debugging; never more than a kilobyte.
    response: Mapped[str | None] = mapped_column(String(1024))
    worker: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (Index("ix_delivery_attempt_delivery", "delivery_id", "id"),)
