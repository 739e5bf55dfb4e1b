"""Helpers shared by commands: load the settings, run a coroutine against a prepared
container, and the shape of every command group."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import DotEnvSettingsSource, SettingsError
from typer._click import Context, HelpFormatter
from typer.core import TyperArgument, TyperCommand

from globeguard.boot import prepare
from globeguard.settings import Settings
from globeguard.settings_check import problem_lines, unknown_variable_warnings
from globeguard.wiring import Container, build

T = TypeVar("T")


def command_group(description: str) -> typer.Typer:
    """A command group. Plain help pages (no Rich panels): they wrap at 80 columns instead
    of cutting long option names, and show no type for flags."""
    return typer.Typer(help=description, no_args_is_help=True, rich_markup_mode=None)


class HumanHelp(TyperCommand):
    """A command whose help page names each argument by its metavar alone: Typer would print
    the argument's Python type beside it (`FILE <path>`), and wrap required ones in braces in
    the usage line."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                label = param.display_name_raw
                pieces.append(label if param.required else f"[{label}]")
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            if (record := param.get_help_record(ctx)) is None:
                continue
            if isinstance(param, TyperArgument):
                arguments.append((param.display_name_raw, record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _variable_names() -> list[str]:
    """Names set in the environment and in the .env file the settings read."""
    from_file = DotEnvSettingsSource(Settings).env_vars
    return [*os.environ, *(name.upper() for name in from_file)]


def load_settings() -> Settings:
    """Settings from the environment. Each variable that is no setting gets a warning; a
    refused value ends the command with exit status 2 and one line per variable (never the
    refused value: it may be a secret)."""
    for warning in unknown_variable_warnings(_variable_names()):
        typer.echo(warning, err=True)
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        for line in problem_lines(exc, os.environ):
            typer.echo(line, err=True)
        raise typer.Exit(2) from None


def run_with_container(work: Callable[[Container], Awaitable[T]]) -> T:
    async def _main() -> T:
        container = build(load_settings())
        try:
            await prepare(container)
            return await work(container)
        finally:
            await container.db.dispose()

    return asyncio.run(_main())
