"""Login events: every sign-in attempt seen by Globeguard or reported by another IdP, with
where it came from and the travel verdict it earned."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, BigId, UtcDateTime
from globeguard.kit.clock import utcnow

# Written out as literals: a partial index serves only queries that spell the same predicate.
FLAGGED_WHERE = "verdict IN ('suspicious', 'impossible')"


class LoginEvent(Base):
    __tablename__ = "login_event"

    # Also the arrival order: events are ordered by (occurred_at, id).
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_uuid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # Neighbours are searched per exact subject: a Globeguard user id, or the username an
    # external IdP reported.
    subject: Mapped[str] = mapped_column(String(320), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # Fingerprint of what the sender posted, to tell an idempotent replay from a conflict.
    body_digest: Mapped[str | None] = mapped_column(String(64))

    located: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    geo_reason: Mapped[str | None] = mapped_column(String(32))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    accuracy_radius_km: Mapped[int | None] = mapped_column(Integer)
    country_iso: Mapped[str | None] = mapped_column(String(2))
    country_geoname_id: Mapped[int | None] = mapped_column(Integer)
    subdivision_iso: Mapped[str | None] = mapped_column(String(8))
    # The region's English name, as the GeoIP database named it when the login was stored
    # ("Tokyo" for 13): people read names, not codes. Null for logins stored before names were.
    subdivision_name: Mapped[str | None] = mapped_column(String(128))
    subdivision_geoname_id: Mapped[int | None] = mapped_column(Integer)
    city_name: Mapped[str | None] = mapped_column(String(128))
    city_geoname_id: Mapped[int | None] = mapped_column(Integer)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    asn: Mapped[int | None] = mapped_column(Integer)

    verdict: Mapped[str | None] = mapped_column(String(16))
    verdict_reasons: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # An admin's word on the login: "safe" (its place and network become trusted) or
    # "compromised" (never trusted, whatever recurs from there).
    review: Mapped[str | None] = mapped_column(String(16))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_login_event_subject_time", "subject", "occurred_at", "id"),
        Index("ix_login_event_user_time", "user_id", "occurred_at"),
        Index("ix_login_event_occurred_at", "occurred_at"),
        # The newest detections (the dashboard's flagged panel) without a scan of every login.
        Index(
            "ix_login_event_flagged",
            "id",
            sqlite_where=text(FLAGGED_WHERE),
            postgresql_where=text(FLAGGED_WHERE),
        ),
    )


class LoginProfile(Base):
    """What grading needs to know of a subject's past, kept current in the transaction that
    stores each event: so a login arriving after all of its subject's stored ones is judged
    from this one row, not from a read of its history (see travel.profile)."""

    __tablename__ = "login_profile"

    subject: Mapped[str] = mapped_column(String(320), primary_key=True)
    # Set for Globeguard's own users, so erasing the user erases this too.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    # The time of the subject's newest stored event.
    last_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    __table_args__ = (Index("ix_login_profile_user_id", "user_id"),)
