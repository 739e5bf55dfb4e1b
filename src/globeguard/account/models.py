"""Account-security tables: TOTP factors, recovery codes, single-use tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, JsonDoc, UtcDateTime
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import new_uuid


class TotpFactor(Base):
    """A user's authenticator app (RFC 6238). One per user; `confirmed_at` is empty until a
    first code proved the enrolment, and only a confirmed factor is asked for."""

    __tablename__ = "totp_factor"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    # The shared secret, sealed with the instance secret (AES-GCM); never stored in the clear.
    secret_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The time step of the last code accepted: a code (or an earlier one) is accepted once.
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """Single-use codes for when the authenticator is lost; only their SHA-256 is kept."""

    __tablename__ = "recovery_code"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OneTimeToken(Base):
    """A secret that works once, for one purpose, until it expires: an email verification
    link, a password reset link, a "was this you?" answer, a step-up `mfa_token`. Only its
    SHA-256 is stored; `data` holds what the token is bound to (an attempt, a place, an
    emailed code's digest)."""

    __tablename__ = "one_time_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    )
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Wrong codes presented against this token (an emailed step-up code); it dies at a limit.
    failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    __table_args__ = (
        Index("ix_one_time_token_user_purpose", "user_id", "purpose"),
        Index("ix_one_time_token_expires_at", "expires_at"),
    )
