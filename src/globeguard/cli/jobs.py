"""`globeguard users export|import` and `globeguard auth0 sync`: submit a job and run it in
this process with a progress bar (or, if a server's runner took it first, follow it)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.jobs.models import Job
from globeguard.jobs.schemas import Auth0SyncRequest, ExportRequest
from globeguard.kit.errors import AppError
from globeguard.wiring import Container

from .common import HumanHelp, command_group, run_with_container

users_app = command_group("Bulk export and import of users.")
auth0_app = command_group("The Auth0 connector.")
ACTOR = "cli"
# Whoever runs the CLI holds the database itself: its jobs carry every permission.
OPERATOR = ALL_PERMISSIONS
FOLLOW_INTERVAL_S = 0.5

Submit = Callable[[Container], Awaitable[Job]]


def _run(label: str, submit: Submit, finish: Callable[[Container, Job], None]) -> None:
    async def work(container: Container) -> None:
        job = await submit(container)
        columns = (
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as bar:
            task = bar.add_task(label, total=None)

            def show(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            if not await container.job_runner.run_one(job.id, show):
                await _follow(container, job.id, show)
        async with container.db.read() as session:
            finish(container, await container.jobs.get(session, job.id))

    try:
        run_with_container(work)
    except AppError as exc:
        typer.echo(f"error: {exc.detail} ({exc.code})", err=True)
        raise typer.Exit(1) from exc


async def _follow(
    container: Container, job_id: uuid.UUID, show: Callable[[int, int | None], None]
) -> None:
    """Another process's runner has the job: show its progress until it ends."""
    while True:
        async with container.db.read() as session:
            job = await container.jobs.get(session, job_id)
        show(job.progress_done, job.progress_total)
        if job.status not in ("pending", "processing"):
            return
        await asyncio.sleep(FOLLOW_INTERVAL_S)


def _failed(job: Job) -> None:
    if job.status != "completed":
        typer.echo(f"job {job.id} {job.status}: {job.error or ''}", err=True)
        raise typer.Exit(1)


def _summary(result: dict[str, Any]) -> str:
    text = f"{result['inserted']} inserted, {result['updated']} updated, {result['failed']} failed"
    for error in result.get("errors", [])[:20]:
        where = next(iter(error))
        text += f"\n  {where} {error[where]}: {error['reason']}"
    return text


@users_app.command("export", cls=HumanHelp)
def export(
    output: Path = typer.Argument(..., metavar="FILE", help="Where to write the gzipped file."),
    fmt: str = typer.Option("ndjson", "--format", metavar="FORMAT", help="ndjson or csv."),
    fields: str | None = typer.Option(
        None, metavar="FIELDS", help="Comma-separated fields (default: all but password_hash)."
    ),
    query: str | None = typer.Option(
        None, "--query", "-q", metavar="QUERY", help="User search query (default: every user)."
    ),
) -> None:
    """Export users to a gzipped NDJSON or CSV file."""
    body = ExportRequest(
        format=fmt,  # type: ignore[arg-type]
        fields=[f.strip() for f in fields.split(",")] if fields else None,
        q=query,
    )

    async def submit(container: Container) -> Job:
        async with container.db.transaction() as session:
            return await container.jobs.submit_export(session, body, ACTOR, scopes=OPERATOR)

    def finish(container: Container, job: Job) -> None:
        _failed(job)
        source = container.jobs.files.export(job.id, "csv" if fmt == "csv" else "ndjson")
        shutil.move(source, output)
        typer.echo(f"exported {job.result['users'] if job.result else 0} users to {output}")

    _run("exporting", submit, finish)


@users_app.command("import", cls=HumanHelp)
def import_(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        metavar="FILE",
        help="The file to import.",
    ),
    upsert: bool = typer.Option(
        False, "--upsert", help="Update users that exist (same user_id or email)."
    ),
) -> None:
    """Import users from an Auth0 JSON array, Auth0 export NDJSON or our own export (gzip or
    not). The file is read where it is."""

    async def submit(container: Container) -> Job:
        async with container.db.transaction() as session:
            return await container.jobs.submit_import(
                session, path, upsert=upsert, actor=ACTOR, scopes=OPERATOR, move=False
            )

    def finish(container: Container, job: Job) -> None:
        _failed(job)
        typer.echo(_summary(job.result or {}))

    _run("importing", submit, finish)


@auth0_app.command("sync", cls=HumanHelp)
def sync(
    domain: str | None = typer.Option(
        None, metavar="DOMAIN", help="Tenant domain (default: GLOBEGUARD_AUTH0__DOMAIN)."
    ),
    client_id: str | None = typer.Option(
        None, metavar="ID", help="Client id (default: GLOBEGUARD_AUTH0__CLIENT_ID)."
    ),
    connection_id: str | None = typer.Option(
        None, metavar="ID", help="Export only this connection (con_…)."
    ),
) -> None:
    """Import an Auth0 tenant's users and their last sign-ins. The client secret comes from
    GLOBEGUARD_AUTH0__CLIENT_SECRET (never a flag: flags end up in shell history)."""

    async def submit(container: Container) -> Job:
        settings = container.settings.auth0
        secret: SecretStr | None = settings.client_secret
        body = Auth0SyncRequest(
            domain=domain or settings.domain,
            client_id=client_id or settings.client_id if secret else None,
            client_secret=secret,
            connection_id=connection_id,
        )
        async with container.db.transaction() as session:
            return await container.jobs.submit_auth0_sync(session, body, ACTOR, scopes=OPERATOR)

    def finish(container: Container, job: Job) -> None:
        _failed(job)
        result = job.result or {}
        logins = result.get("login_events", {})
        typer.echo(_summary(result) + f"\n{logins.get('accepted', 0)} login events recorded")

    _run("syncing", submit, finish)
