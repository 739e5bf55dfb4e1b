from __future__ import annotations

import typer
import uvicorn

from globeguard.cli.common import load_settings
from globeguard.observability.logs import log_config
from globeguard.settings_check import issuer_notice_for


def serve(
    host: str = typer.Option(
        "127.0.0.1", metavar="ADDRESS", help="Interface to listen on (0.0.0.0: every one)."
    ),
    port: int = typer.Option(8000, metavar="PORT", help="TCP port."),
    workers: int = typer.Option(
        1, metavar="N", help="Processes (PostgreSQL only; SQLite is single-process)."
    ),
) -> None:
    """Run the API (and, when embedded, its background loops)."""
    settings = load_settings()
    if workers > 1 and settings.db.is_sqlite:
        raise typer.BadParameter("SQLite supports one process; use PostgreSQL for --workers > 1")
    if (notice := issuer_notice_for(settings, host, port)) is not None:
        if notice.refuse:
            typer.echo(f"globeguard: {notice.message}", err=True)
            raise typer.Exit(2)
        typer.echo(f"globeguard: warning: {notice.message}", err=True)
    uvicorn.run(
        "globeguard.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        proxy_headers=False,
        server_header=False,
        # uvloop, accepting each burst of new connections at once (kit.event_loop).
        loop="globeguard.kit.event_loop:new_event_loop",
    )
