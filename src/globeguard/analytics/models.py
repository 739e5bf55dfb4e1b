"""Rollups of login events, kept current in the transaction that stores each event (see
`analytics.rollups`), so an analytics request reads cells and places, not events.

The four count tables (the first two pairs below) keep one row per key, with a count column
per (outcome, verdict): `ok_none` … `ok_impossible` for successful sign-ins, `failed_none` …
`failed_impossible` for failed ones (`COUNT_COLUMNS`; an event without a verdict counts as
`none`). A key sees 4 to 6 of those combinations, so a row per combination would make reads
and upserts touch that many times more rows; a filter on outcome or verdict adds up the
columns it selects instead.

- `geo_rollup_day` / `geo_rollup_total`: event counts per (UTC day | all retained days,
  dimension, key). A dimension is a heatmap grid level (key = packed cell, see `grid`) or a
  place level (key = geoname id). The total is the sum of the day rows at all times:
  retention subtracts a day from it as it deletes that day.
- `geo_subject_day` / `geo_subject_total`: counts per subject, (UTC day,) and place (finest
  cell and geoname ids), for what global counts cannot answer: distinct users (`by=users`)
  and user queries (`q=`), joined to the users a query matches through `user_id`. Retention
  keeps the total equal to the sum of the days, as for the global pair.
- `geo_last_login`: each subject's latest successful located sign-in (`basis=last_login`).
- `geo_flagged_journey`: suspicious and impossible journeys, with both ends, for the arcs.
- `geo_place`: labels and a position for the geoname ids the counts are keyed by (names are
  labels, not keys: the same city name exists in many countries).

Absent geoname ids are stored as 0 (no geoname has id 0): they are part of primary keys.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.analytics.params import VERDICTS
from globeguard.db.base import Base, UtcDateTime

# SQLite: rows stored in primary-key order (WITHOUT ROWID), so a request's key range is read
# in one sequential pass instead of one table lookup per index entry, and an upsert writes
# one B-tree instead of two. PostgreSQL ignores it.
CLUSTERED = {"sqlite_with_rowid": False}

# Place dimensions, after the grid levels 0..4.
COUNTRY_DIM, REGION_DIM, CITY_DIM = 10, 11, 12
DIMENSIONS = (0, 1, 2, 3, 4, COUNTRY_DIM, REGION_DIM, CITY_DIM)

# (success, verdict, column) of every count column, in table order: the one list the
# models, the aggregation (`facts`) and the SQL (`repository`) are derived from.
COUNT_COLUMNS: tuple[tuple[bool, str, str], ...] = tuple(
    (success, verdict, f"{'ok' if success else 'failed'}_{verdict}")
    for success in (True, False)
    for verdict in VERDICTS
)
COUNTS = tuple(name for _, _, name in COUNT_COLUMNS)
_POSITIONS = {(success, verdict): i for i, (success, verdict, _) in enumerate(COUNT_COLUMNS)}


def count_position(success: bool, verdict: str) -> int:
    """Where an event's outcome and verdict count: an index into `COUNTS`."""
    return _POSITIONS[(success, verdict)]


def count_column(success: bool, verdict: str) -> str:
    return COUNTS[count_position(success, verdict)]


class CountColumns:
    """Mixin: the count columns of the four count tables, added below from `COUNTS` so the
    list is written once. Upserts set every one; the server default serves other inserts."""


for _name in COUNTS:
    setattr(
        CountColumns,
        _name,
        mapped_column(Integer, nullable=False, default=0, server_default=text("0")),
    )


class GeoRollupDay(CountColumns, Base):
    __tablename__ = "geo_rollup_day"

    # Key order = how requests read: one dimension, a range of days, then keys (cells in a
    # box). No secondary index: each costs another B-tree write per upsert, a dozen per event.
    dim: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    __table_args__ = (CLUSTERED,)


class GeoRollupTotal(CountColumns, Base):
    __tablename__ = "geo_rollup_total"

    dim: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    __table_args__ = (CLUSTERED,)


class GeoSubjectDay(CountColumns, Base):
    __tablename__ = "geo_subject_day"

    subject: Mapped[str] = mapped_column(String(320), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # Finest packed cell, or -1 when the event has no coordinates.
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    country_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Set when the subject is a Globeguard user: erasing the user erases these rows.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))

    __table_args__ = (
        Index("ix_geo_subject_day_user_id", "user_id", "day"),
        Index("ix_geo_subject_day_day", "day"),
        CLUSTERED,
    )


class GeoSubjectTotal(CountColumns, Base):
    """`geo_subject_day` summed over its days: what a user query or `by=users` without a
    time range reads (one row per user and place, not per user, place and day)."""

    __tablename__ = "geo_subject_total"

    subject: Mapped[str] = mapped_column(String(320), primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    country_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))

    __table_args__ = (Index("ix_geo_subject_total_user_id", "user_id"), CLUSTERED)


class GeoLastLogin(Base):
    __tablename__ = "geo_last_login"

    subject: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    event_uuid: Mapped[str] = mapped_column(String(64), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    cell: Mapped[int] = mapped_column(BigInteger, nullable=False)
    country_id: Mapped[int] = mapped_column(Integer, nullable=False)
    region_id: Mapped[int] = mapped_column(Integer, nullable=False)
    city_id: Mapped[int] = mapped_column(Integer, nullable=False)
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)

    __table_args__ = (
        Index("ix_geo_last_login_day", "day"),
        Index("ix_geo_last_login_user_id", "user_id"),
        Index("ix_geo_last_login_event_uuid", "event_uuid"),
    )


class GeoFlaggedJourney(Base):
    __tablename__ = "geo_flagged_journey"

    # The later event of the journey: the one the verdict is on.
    event_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(320), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    from_lat: Mapped[float] = mapped_column(Float, nullable=False)
    from_lon: Mapped[float] = mapped_column(Float, nullable=False)
    from_city: Mapped[str | None] = mapped_column(String(128))
    from_country: Mapped[str | None] = mapped_column(String(2))
    to_lat: Mapped[float] = mapped_column(Float, nullable=False)
    to_lon: Mapped[float] = mapped_column(Float, nullable=False)
    to_city: Mapped[str | None] = mapped_column(String(128))
    to_country: Mapped[str | None] = mapped_column(String(2))
    distance_km: Mapped[float] = mapped_column(Float, nullable=False)
    elapsed_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    speed_mph: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        Index("ix_geo_flagged_journey_occurred_at", "occurred_at"),
        Index("ix_geo_flagged_journey_user_id", "user_id"),
    )


class GeoPlace(Base):
    __tablename__ = "geo_place"

    dim: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    geoname_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country_iso: Mapped[str | None] = mapped_column(String(2))
    subdivision_iso: Mapped[str | None] = mapped_column(String(8))
    # The region's English name (a region's and a city's row): the newest login's, so a place
    # first seen before names were stored is named by its next login.
    subdivision_name: Mapped[str | None] = mapped_column(String(128))
    city_name: Mapped[str | None] = mapped_column(String(128))
    # Where the place was first seen: a marker position for the map, and what a box
    # (`top-locations?bbox=`) is matched against.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
