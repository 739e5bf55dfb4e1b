from __future__ import annotations

import asyncio

import typer

from globeguard.cli.common import HumanHelp, command_group, load_settings
from globeguard.db.engine import create_engine
from globeguard.db.migrate import current_revision, upgrade

app = command_group("Database schema.")


@app.command("upgrade", cls=HumanHelp)
def upgrade_command(
    revision: str = typer.Argument(
        "head", metavar="REVISION", help="A migration's revision id, or head for the newest."
    ),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""

    async def _run() -> str | None:
        engine = create_engine(load_settings().db)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"database at revision {asyncio.run(_run())}")
