"""rollup count columns: one row per key, a count per outcome and verdict

Revision ID: 0008_rollup_count_columns
Revises: 0007_jobs
Create Date: 2026-11-21 15:50:00

The four count tables were keyed by (…, success, verdict) with one `events` count: a key has
4 to 6 of those rows. They become one row per key with a count column per (outcome,
verdict), and keep their data: each table is rebuilt under a temporary name, filled from the
old one (summed per key), and renamed over it; the secondary indexes are created once the
old table, and so its indexes' names, are gone. The downgrade rebuilds the old shape the
same way, a row per non-zero count.

The column list is written out here, not imported from the models: this migration must keep
building the same tables whatever the models become.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

revision: str = "0008_rollup_count_columns"
down_revision: str | None = "0007_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERDICTS = ("none", "plausible", "unverifiable", "suspicious", "impossible")
# (success, verdict, count column), in table order.
COUNT_COLUMNS = tuple(
    (success, verdict, f"{'ok' if success else 'failed'}_{verdict}")
    for success in (True, False)
    for verdict in VERDICTS
)
COUNTS = tuple(name for _, _, name in COUNT_COLUMNS)
SUBJECT_PLACE = ("cell", "country_id", "region_id", "city_id")
Indexes = tuple[tuple[str, tuple[str, ...]], ...]
# Table → its key (before: followed by success and verdict), and its secondary indexes.
TABLES: dict[str, tuple[tuple[str, ...], Indexes]] = {
    "geo_rollup_day": (("dim", "day", "key"), ()),
    "geo_rollup_total": (("dim", "key"), ()),
    "geo_subject_day": (
        ("subject", "day", *SUBJECT_PLACE),
        (
            ("ix_geo_subject_day_user_id", ("user_id", "day")),
            ("ix_geo_subject_day_day", ("day",)),
        ),
    ),
    "geo_subject_total": (
        ("subject", *SUBJECT_PLACE),
        (("ix_geo_subject_total_user_id", ("user_id",)),),
    ),
}
KEY_TYPES: dict[str, TypeEngine[Any]] = {
    "dim": sa.SmallInteger(),
    "day": sa.Date(),
    "key": sa.BigInteger(),
    "subject": sa.String(length=320),
    "cell": sa.BigInteger(),
    "country_id": sa.Integer(),
    "region_id": sa.Integer(),
    "city_id": sa.Integer(),
}


def upgrade() -> None:
    for table, (key, indexes) in TABLES.items():
        counts = [
            sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)
            for name in COUNTS
        ]
        shape = [*_key_columns(key), *_owner(table), *counts]
        _rebuild(table, key, shape, _pivoted(table, key), indexes)


def downgrade() -> None:
    for table, (key, indexes) in TABLES.items():
        outcome = [
            sa.Column("success", sa.Boolean(), nullable=False),
            sa.Column("verdict", sa.String(length=16), nullable=False),
        ]
        events = sa.Column("events", sa.Integer(), nullable=False)
        shape = [*_key_columns(key), *outcome, *_owner(table), events]
        _rebuild(table, (*key, "success", "verdict"), shape, _unpivoted(table, key), indexes)


def _key_columns(key: Sequence[str]) -> list[sa.Column[Any]]:
    return [sa.Column(name, KEY_TYPES[name], nullable=False) for name in key]


def _owned(table: str) -> bool:
    return table.startswith("geo_subject")


def _owner(table: str) -> list[SchemaItem]:
    if not _owned(table):
        return []
    return [
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=f"fk_{table}_user_id_user", ondelete="CASCADE"
        ),
    ]


def _pivoted(table: str, key: Sequence[str]) -> str:
    """Columns and SELECT that fill the new shape: per key, each outcome and verdict's
    events in its column."""
    owner = ["user_id"] if _owned(table) else []
    sums = [
        f"SUM(CASE WHEN success = {_boolean(success)} AND verdict = '{verdict}' "
        "THEN events ELSE 0 END)"
        for success, verdict, _ in COUNT_COLUMNS
    ]
    columns = ", ".join([*key, *owner, *COUNTS])
    values = ", ".join([*key, *(_one_owner() for _ in owner), *sums])
    # Names and literals are this migration's own.
    return f"({columns}) SELECT {values} FROM {table} GROUP BY {', '.join(key)}"  # noqa: S608


def _unpivoted(table: str, key: Sequence[str]) -> str:
    """Columns and SELECT that fill the old shape: a row per non-zero count column."""
    owner = ["user_id"] if _owned(table) else []
    columns = ", ".join([*key, "success", "verdict", *owner, "events"])
    selects = []
    for success, verdict, name in COUNT_COLUMNS:
        values = ", ".join([*key, _boolean(success), f"'{verdict}'", *owner, name])
        selects.append(f"SELECT {values} FROM {table} WHERE {name} <> 0")  # noqa: S608
    return f"({columns}) {' UNION ALL '.join(selects)}"


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _one_owner() -> str:
    """The user of the subject of the rows a key merges: they all name the same one (or
    none, for rows written before the subject was known to be a user). PostgreSQL has no
    max(uuid); SQLite stores uuids as text, which a cast to UUID would turn into numbers."""
    if op.get_bind().dialect.name == "postgresql":
        return "CAST(MAX(CAST(user_id AS TEXT)) AS UUID)"
    return "MAX(user_id)"


def _rebuild(
    table: str,
    primary_key: Sequence[str],
    shape: Sequence[SchemaItem],
    fill: str,
    indexes: Indexes,
) -> None:
    """Replace `table` with one of the given shape, filled by `fill` (columns and SELECT)."""
    temporary = f"{table}_rebuilt"
    # A primary key is an index on PostgreSQL, and index names share one namespace: the new
    # key is named after the temporary table until the old table is gone. SQLite's
    # constraint names are per table.
    postgresql = op.get_bind().dialect.name == "postgresql"
    pk = f"pk_{temporary}" if postgresql else f"pk_{table}"
    op.create_table(
        temporary,
        *shape,
        sa.PrimaryKeyConstraint(*primary_key, name=pk),
        sqlite_with_rowid=False,
    )
    op.execute(f"INSERT INTO {temporary} {fill}")
    op.drop_table(table)
    op.rename_table(temporary, table)
    if postgresql:
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {pk} TO pk_{table}")
    for name, columns in indexes:
        op.create_index(name, table, list(columns), unique=False)
