"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from globeguard.db.migrate import include_in_comparison
from globeguard.db.registry import metadata


async def test_migrated_schema_matches_the_models(app):
    engine = app.state.container.db.engine

    def diff(sync_conn):
        context = MigrationContext.configure(
            sync_conn,
            opts={
                "compare_type": True,
                "include_object": include_in_comparison(sync_conn.dialect.name),
            },
        )
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
