"""`globeguard demo seed`: demo users and sign-ins to look at in the dashboard."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from globeguard.demo.service import DemoSeeder, SeedReport
from globeguard.kit.errors import AppError
from globeguard.wiring import Container

from .common import HumanHelp, command_group, run_with_container

app = command_group("Demo data.")


@app.command("seed", cls=HumanHelp)
def seed(
    users: int = typer.Option(
        1000, "--users", min=1, max=1_000_000, metavar="N", help="How many users."
    ),
    seed: int = typer.Option(1, "--seed", metavar="N", help="The same seed gives the same data."),
    until: datetime | None = typer.Option(
        None,
        metavar="TIME",
        help="End of the 30-day window of sign-ins, YYYY-MM-DD[THH:MM:SS] (default: now); "
        "pin it to reproduce.",
    ),
) -> None:
    """Create demo users (AuthGlobeTrek-shaped metadata, no password) and their sign-ins
    from real cities, with hot spots and a few impossible journeys."""
    end = (until or datetime.now(UTC)).astimezone(UTC)
    started = time.perf_counter()

    async def _work(container: Container) -> SeedReport:
        seeder = DemoSeeder(container.db, container.ingestor, container.settings.geoip)
        columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns) as bar:
            task = bar.add_task("users", total=users)
            return await seeder.seed(users, seed, end, lambda n: bar.advance(task, n))

    try:
        report = run_with_container(_work)
    except AppError as exc:
        typer.echo(f"error: {exc.detail} ({exc.code})", err=True)
        raise typer.Exit(1) from exc
    elapsed = time.perf_counter() - started
    typer.echo(
        f"created {report.users} users and {report.events} sign-ins "
        f"({report.flagged} suspicious or impossible) in {elapsed:.1f} s "
        f"({report.users / elapsed:,.0f} users/s)"
    )
