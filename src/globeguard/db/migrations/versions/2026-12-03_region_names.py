"""region names

Revision ID: 0011_region_names
Revises: 0010_account_security
Create Date: 2026-12-03 14:30:00

- `login_event.subdivision_name`, `geo_place.subdivision_name`: the region's English name
  next to its ISO code ("Tokyo" beside "13"), as the GeoIP database gives it. Rows stored
  before stay null: the API then shows the code alone. A place's name is filled by its next
  login.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_region_names"
down_revision: str | None = "0010_account_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("login_event", "geo_place")


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch rebuild: on SQLite a rebuild drops the old table, and
    # dropping it would cascade to the rows that reference it (see 0009_login_review). A
    # nullable column without a default is a change to the catalogue only, on both databases,
    # however many logins are stored.
    for table in TABLES:
        op.add_column(table, sa.Column("subdivision_name", sa.String(length=128), nullable=True))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35+), for the reason given in upgrade().
    for table in reversed(TABLES):
        op.drop_column(table, "subdivision_name")
