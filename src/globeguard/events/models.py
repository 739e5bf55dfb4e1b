"""The outbox: every security-relevant change is written here in the change's own transaction.

Rows are the audit trail today and the source of the delivery pipeline (webhooks, NATS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, BigId, JsonDoc, UtcDateTime
from globeguard.kit.clock import utcnow


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
