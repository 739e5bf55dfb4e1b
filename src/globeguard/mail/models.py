"""The mail outbox: one row per message to send."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, UtcDateTime
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import new_uuid


class MailMessage(Base):
    """A rendered message waiting to be sent (or sent). Written in the same transaction as
    the change it tells about, so nothing is mailed before its data is committed and nothing
    committed is lost. The body carries single-use links, so it is sealed at rest and
    emptied once the message is sent."""

    __tablename__ = "mail_message"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    # Which template made it (verify_email, password_reset, signin_notice, …), for logs.
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    to_address: Mapped[str] = mapped_column(String(320), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    # JSON {"text": …, "html": …}, sealed with the instance secret; "" once sent.
    body_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when retries are exhausted; the message is kept for an operator to see.
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (Index("ix_mail_message_due", "sent_at", "failed_at", "next_attempt_at"),)
