"""login reviews, forced password resets, external identities

Revision ID: 0009_login_review
Revises: 0008_rollup_count_columns
Create Date: 2026-12-03 10:40:00

- `login_event.review` (`safe` | `compromised`) and `reviewed_at`: an admin's word on a login.
  A `safe` login's place and network are trusted when a profile is rebuilt from the events.
- `user.password_reset_required`: set when a login is reviewed `compromised`; the account
  cannot sign in with its password until the password is set again.
- `external_identity`: ids another IdP knows a user by (an Auth0 `user_id`), so the logins
  it reports under that id are linked to the user.
- `ix_login_event_flagged`: a partial index of the flagged logins, newest first for the
  dashboard's panel.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from globeguard.db.base import UtcDateTime

revision: str = "0009_login_review"
down_revision: str | None = "0008_rollup_count_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch rebuild: on SQLite a rebuild drops the old table, and
    # dropping `user` cascades to every row that references it (sessions, keys, logins).
    op.add_column("login_event", sa.Column("review", sa.String(length=16), nullable=True))
    op.add_column("login_event", sa.Column("reviewed_at", UtcDateTime(), nullable=True))
    op.add_column(
        "user",
        sa.Column(
            "password_reset_required", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.create_table(
        "external_identity",
        sa.Column("external_id", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_external_identity_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("external_id", name=op.f("pk_external_identity")),
    )
    with op.batch_alter_table("external_identity", schema=None) as batch_op:
        batch_op.create_index("ix_external_identity_user_id", ["user_id"], unique=False)
    flagged = sa.text("verdict IN ('suspicious', 'impossible')")
    op.create_index(
        "ix_login_event_flagged",
        "login_event",
        ["id"],
        sqlite_where=flagged,
        postgresql_where=flagged,
    )


def downgrade() -> None:
    op.drop_index("ix_login_event_flagged", table_name="login_event")
    with op.batch_alter_table("external_identity", schema=None) as batch_op:
        batch_op.drop_index("ix_external_identity_user_id")
    op.drop_table("external_identity")
    # DROP COLUMN in place (SQLite 3.35+), for the reason given in upgrade().
    op.drop_column("user", "password_reset_required")
    op.drop_column("login_event", "reviewed_at")
    op.drop_column("login_event", "review")
