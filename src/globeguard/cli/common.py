"""Helpers shared by commands: run a coroutine against a prepared container."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from globeguard.boot import prepare
from globeguard.settings import Settings
from globeguard.wiring import Container, build

T = TypeVar("T")


def run_with_container(work: Callable[[Container], Awaitable[T]]) -> T:
    async def _main() -> T:
        container = build(Settings())
        try:
            await prepare(container)
            return await work(container)
        finally:
            await container.db.dispose()

    return asyncio.run(_main())
