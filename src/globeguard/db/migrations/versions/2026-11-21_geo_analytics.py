"""geo analytics rollups

Revision ID: 0006_geo_analytics
Revises: 0005_login_profile
Create Date: 2026-11-21 13:36:14.777150

Empty at first: rollups count the events stored from now on (the raw events of the last 90
days are not replayed into them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from globeguard.db.base import UtcDateTime

revision: str = "0006_geo_analytics"
down_revision: str | None = "0005_login_profile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "geo_place",
        sa.Column("dim", sa.SmallInteger(), nullable=False),
        sa.Column("geoname_id", sa.Integer(), nullable=False),
        sa.Column("country_iso", sa.String(length=2), nullable=True),
        sa.Column("subdivision_iso", sa.String(length=8), nullable=True),
        sa.Column("city_name", sa.String(length=128), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dim", "geoname_id", name=op.f("pk_geo_place")),
    )
    op.create_table(
        "geo_rollup_day",
        sa.Column("dim", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dim", "day", "key", "success", "verdict", name=op.f("pk_geo_rollup_day")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "geo_rollup_total",
        sa.Column("dim", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dim", "key", "success", "verdict", name=op.f("pk_geo_rollup_total")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "geo_flagged_journey",
        sa.Column("event_uuid", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("from_lat", sa.Float(), nullable=False),
        sa.Column("from_lon", sa.Float(), nullable=False),
        sa.Column("from_city", sa.String(length=128), nullable=True),
        sa.Column("from_country", sa.String(length=2), nullable=True),
        sa.Column("to_lat", sa.Float(), nullable=False),
        sa.Column("to_lon", sa.Float(), nullable=False),
        sa.Column("to_city", sa.String(length=128), nullable=True),
        sa.Column("to_country", sa.String(length=2), nullable=True),
        sa.Column("distance_km", sa.Float(), nullable=False),
        sa.Column("elapsed_seconds", sa.Float(), nullable=False),
        sa.Column("speed_mph", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_geo_flagged_journey_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_uuid", name=op.f("pk_geo_flagged_journey")),
    )
    with op.batch_alter_table("geo_flagged_journey", schema=None) as batch_op:
        batch_op.create_index("ix_geo_flagged_journey_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index("ix_geo_flagged_journey_user_id", ["user_id"], unique=False)

    op.create_table(
        "geo_last_login",
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("event_uuid", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_geo_last_login_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_geo_last_login")),
    )
    with op.batch_alter_table("geo_last_login", schema=None) as batch_op:
        batch_op.create_index("ix_geo_last_login_day", ["day"], unique=False)
        batch_op.create_index("ix_geo_last_login_event_uuid", ["event_uuid"], unique=False)
        batch_op.create_index("ix_geo_last_login_user_id", ["user_id"], unique=False)

    op.create_table(
        "geo_subject_day",
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_geo_subject_day_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subject",
            "day",
            "cell",
            "country_id",
            "region_id",
            "city_id",
            "success",
            "verdict",
            name=op.f("pk_geo_subject_day"),
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("geo_subject_day", schema=None) as batch_op:
        batch_op.create_index("ix_geo_subject_day_day", ["day"], unique=False)
        batch_op.create_index("ix_geo_subject_day_user_id", ["user_id", "day"], unique=False)

    op.create_table(
        "geo_subject_total",
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_geo_subject_total_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subject",
            "cell",
            "country_id",
            "region_id",
            "city_id",
            "success",
            "verdict",
            name=op.f("pk_geo_subject_total"),
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("geo_subject_total", schema=None) as batch_op:
        batch_op.create_index("ix_geo_subject_total_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("geo_subject_total", schema=None) as batch_op:
        batch_op.drop_index("ix_geo_subject_total_user_id")

    op.drop_table("geo_subject_total")
    with op.batch_alter_table("geo_subject_day", schema=None) as batch_op:
        batch_op.drop_index("ix_geo_subject_day_user_id")
        batch_op.drop_index("ix_geo_subject_day_day")

    op.drop_table("geo_subject_day")
    with op.batch_alter_table("geo_last_login", schema=None) as batch_op:
        batch_op.drop_index("ix_geo_last_login_user_id")
        batch_op.drop_index("ix_geo_last_login_event_uuid")
        batch_op.drop_index("ix_geo_last_login_day")

    op.drop_table("geo_last_login")
    with op.batch_alter_table("geo_flagged_journey", schema=None) as batch_op:
        batch_op.drop_index("ix_geo_flagged_journey_user_id")
        batch_op.drop_index("ix_geo_flagged_journey_occurred_at")

    op.drop_table("geo_flagged_journey")
    op.drop_table("geo_rollup_total")
    op.drop_table("geo_rollup_day")
    op.drop_table("geo_place")
