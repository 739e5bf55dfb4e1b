"""Helpers shared by commands: run a coroutine against a prepared container."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError

from globeguard.boot import prepare
from globeguard.settings import Settings
from globeguard.wiring import Container, build

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment; refused ones end the command with exit status 2 and
    one line per problem (never the refused value: it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            typer.echo(f"globeguard: invalid setting {where}: {message}", err=True)
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
