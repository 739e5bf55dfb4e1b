"""ingest: external users

Revision ID: 0003_ingest
Revises: 0002_login_events
Create Date: 2026-11-21 15:02:11.204518
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from globeguard.db.base import UtcDateTime

revision: str = "0003_ingest"
down_revision: str | None = "0002_login_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_user",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_user")),
        sa.UniqueConstraint("user_id", name=op.f("uq_external_user_user_id")),
    )


def downgrade() -> None:
    op.drop_table("external_user")
