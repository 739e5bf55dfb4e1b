from __future__ import annotations

import asyncio

import typer

from globeguard.cli.common import load_settings
from globeguard.db.engine import create_engine
from globeguard.db.migrate import current_revision, upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""

    async def _run() -> str | None:
        engine = create_engine(load_settings().db)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"database at revision {asyncio.run(_run())}")
