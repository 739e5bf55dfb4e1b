"""login events

Revision ID: 0002_login_events
Revises: 0001_identity
Create Date: 2026-11-21 12:09:22.843854
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from globeguard.db.base import UtcDateTime

revision: str = "0002_login_events"
down_revision: str | None = "0001_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_uuid", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("body_digest", sa.String(length=64), nullable=True),
        sa.Column("located", sa.Boolean(), nullable=False),
        sa.Column("geo_reason", sa.String(length=32), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("accuracy_radius_km", sa.Integer(), nullable=True),
        sa.Column("country_iso", sa.String(length=2), nullable=True),
        sa.Column("country_geoname_id", sa.Integer(), nullable=True),
        sa.Column("subdivision_iso", sa.String(length=8), nullable=True),
        sa.Column("subdivision_geoname_id", sa.Integer(), nullable=True),
        sa.Column("city_name", sa.String(length=128), nullable=True),
        sa.Column("city_geoname_id", sa.Integer(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("asn", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("verdict_reasons", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_login_event_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_event")),
        sa.UniqueConstraint("event_uuid", name=op.f("uq_login_event_event_uuid")),
    )
    with op.batch_alter_table("login_event", schema=None) as batch_op:
        batch_op.create_index("ix_login_event_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index(
            "ix_login_event_subject_time", ["subject", "occurred_at", "id"], unique=False
        )
        batch_op.create_index("ix_login_event_user_time", ["user_id", "occurred_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("login_event", schema=None) as batch_op:
        batch_op.drop_index("ix_login_event_user_time")
        batch_op.drop_index("ix_login_event_subject_time")
        batch_op.drop_index("ix_login_event_occurred_at")

    op.drop_table("login_event")
