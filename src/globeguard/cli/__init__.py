"""`globeguard` command line: one module per command group."""

from __future__ import annotations

import typer

from globeguard.cli import admin, db, demo, jobs, keys, serve, subscriptions, worker
from globeguard.cli.common import HumanHelp

app = typer.Typer(
    help="Globeguard: self-hosted identity with login intelligence.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help pages, as every group's (see command_group)
)
app.command("serve", cls=HumanHelp)(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(keys.app, name="keys")
app.command("worker", cls=HumanHelp)(worker.worker)
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(demo.app, name="demo")
app.add_typer(jobs.users_app, name="users")
app.add_typer(jobs.auth0_app, name="auth0")


def main() -> None:
    app()
