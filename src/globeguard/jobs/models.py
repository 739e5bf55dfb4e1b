"""Job and Auth0 tenant tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, JsonDoc, UtcDateTime
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import new_uuid


class Job(Base):
    """A unit of bulk work. `pending` → `processing` (held under a lease a runner renews) →
    `completed` | `failed` | `cancelled`. `checkpoint` is written in the same transaction
    as the work it describes, so a job taken over after a crash resumes exactly there."""

    __tablename__ = "job"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    progress_done: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        # Runners look for pending jobs and expired leases in creation order.
        Index("ix_job_status_created_at", "status", "created_at"),
        Index("ix_job_finished_at", "finished_at"),
    )


class Auth0Tenant(Base):
    """Management API credentials of one Auth0 tenant. The client secret is sealed with the
    instance secret (AES-GCM) and no endpoint returns it."""

    __tablename__ = "auth0_tenant"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), nullable=False)
    client_secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    connection_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
