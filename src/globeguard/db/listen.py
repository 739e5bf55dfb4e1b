"""PostgreSQL LISTEN on a dedicated connection, kept alive for as long as the process runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class PostgresListener:
    """Calls `on_notify(payload)` for each NOTIFY on `channel`. After every (re)connection,
    once listening, `on_listening()` runs: what was sent while no one listened is lost, and
    the caller decides how to catch up. Reconnects a second after a failure."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        on_listening: Callable[[], None],
        what: str,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_notify = on_notify
        self.on_listening = on_listening
        self.what = what

    async def run(self) -> None:
        import asyncpg

        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("%s cannot connect: %s", self.what, exc)
                await asyncio.sleep(1)
                continue
            closed = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, done=closed: done.set())
                await conn.add_listener(self.channel, self._heard)
                self.on_listening()
                await closed.wait()
                log.warning("%s lost its connection; reconnecting", self.what)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("%s failed: %s", self.what, exc)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.on_notify(payload)
