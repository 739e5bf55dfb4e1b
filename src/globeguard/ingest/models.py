"""Users reported by an external identity provider through the ingestion API.

They are not Globeguard accounts (no password, no sign-in): a record of who signed up
elsewhere, kept so subscribers can onboard them and so replays can be recognised."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, BigId, UtcDateTime
from globeguard.kit.clock import utcnow


class ExternalUser(Base):
    __tablename__ = "external_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The provider's own id ("auth0|64f…"): immutable, so it is the key; usernames change and
    # are absent on many connections (the seed keyed on them and lost those users).
    user_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    username: Mapped[str | None] = mapped_column(String(320))
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    # The configured topic the record arrived on (256: an SNS topic ARN's length).
    topic: Mapped[str] = mapped_column(String(256), nullable=False)
    # Set once: the first message for a user_id wins and replays change nothing.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
