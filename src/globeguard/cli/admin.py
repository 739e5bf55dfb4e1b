from __future__ import annotations

import typer

from globeguard.identity.bootstrap import create_admin, generated_password
from globeguard.kit.errors import AppError
from globeguard.wiring import Container

from .common import HumanHelp, command_group, run_with_container

app = command_group("Administrators.")


@app.command("create", cls=HumanHelp)
def create(
    username: str = typer.Option("admin", metavar="NAME", help="Username of the new admin."),
    password: str | None = typer.Option(
        None,
        metavar="PASSWORD",
        help="Password; a strong one is generated and printed when omitted.",
    ),
    email: str | None = typer.Option(None, metavar="EMAIL", help="Email address."),
) -> None:
    """Create an administrator (roles admin + user)."""
    chosen = password or generated_password()

    async def _work(container: Container) -> str:
        async with container.db.transaction() as session:
            user = await create_admin(container.users, session, username, chosen, email)
            return str(user.id)

    try:
        user_id = run_with_container(_work)
    except AppError as exc:
        typer.echo(f"error: {exc.detail} ({exc.code})", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created admin '{username}' (id {user_id})")
    if password is None:
        typer.echo(f"password: {chosen}")
        typer.echo("store it now; it is not shown again")
