"""login profiles

Revision ID: 0005_login_profile
Revises: 0004_event_delivery
Create Date: 2026-11-21 13:40:00

Empty at first: a subject without a profile is graded from its stored events, which also
writes its profile.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from globeguard.db.base import UtcDateTime

revision: str = "0005_login_profile"
down_revision: str | None = "0004_event_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_profile",
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_login_profile_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_login_profile")),
    )
    with op.batch_alter_table("login_profile", schema=None) as batch_op:
        batch_op.create_index("ix_login_profile_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_profile", schema=None) as batch_op:
        batch_op.drop_index("ix_login_profile_user_id")
    op.drop_table("login_profile")
