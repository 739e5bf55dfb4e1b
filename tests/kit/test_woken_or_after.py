"""Worker loops (job runner, delivery dispatcher) idle in `woken_or_after`; a stop arriving in
any loop turn around a wake must end them, or shutdown waits forever."""

from __future__ import annotations

import asyncio

import pytest

from globeguard.kit.periodic import woken_or_after


async def _worker(wake: asyncio.Event) -> None:
    while True:
        await woken_or_after(wake, 60.0)
        wake.clear()


@pytest.mark.parametrize("turns", range(5))
async def test_a_stop_right_after_a_wake_ends_the_loop(turns):
    wake = asyncio.Event()
    task = asyncio.create_task(_worker(wake))
    await asyncio.sleep(0)
    wake.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    # A bound so that a lost stop fails the test instead of hanging it.
    async with asyncio.timeout(30):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_it_returns_when_woken_and_when_the_time_is_up():
    wake = asyncio.Event()
    wake.set()
    await woken_or_after(wake, 60.0)
    wake.clear()
    await woken_or_after(wake, 0.01)
