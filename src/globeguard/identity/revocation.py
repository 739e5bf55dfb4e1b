"""Live revocation of access tokens without a write per request.

Each token carries its subject's token version and session id. A process checks them against
a small cache of (token_version, status, session revoked) read from the database at most once
per `ttl` per subject and session. A change that revokes tokens (logout, logout-all, block,
delete, role change) evicts the cache entry after its transaction commits; on PostgreSQL it
also sends NOTIFY in that transaction, so every other process evicts it as soon as the change
is committed. `ttl` only bounds staleness if the notification channel is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

CHANNEL = "globeguard_revocation"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubjectState:
    token_version: int
    active: bool
    session_revoked: bool


class RevocationCache:
    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str | None], tuple[float, SubjectState]] = (
            OrderedDict()
        )

    def get(self, subject: str, session_id: str | None) -> SubjectState | None:
        hit = self._entries.get((subject, session_id))
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            return None
        return hit[1]

    def put(self, subject: str, session_id: str | None, state: SubjectState) -> None:
        self._entries[(subject, session_id)] = (time.monotonic(), state)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def evict(self, key: str) -> None:
        """`key` is a subject id (user uuid / client id) or `session:<sid>`."""
        if key.startswith("session:"):
            sid = key.removeprefix("session:")
            doomed = [k for k in self._entries if k[1] == sid]
        else:
            doomed = [k for k in self._entries if k[0] == key]
        for k in doomed:
            self._entries.pop(k, None)

    def clear(self) -> None:
        self._entries.clear()


_PENDING = "globeguard.revoked_keys"


async def announce(session: AsyncSession, key: str) -> None:
    """Mark `key` revoked once this transaction commits, here and in every other process."""
    session.sync_session.info.setdefault(_PENDING, set()).add(key)
    if session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: other processes hear it only if and when we commit.
        await session.execute(text("SELECT pg_notify(:c, :k)"), {"c": CHANNEL, "k": key})


def install_commit_hook(session_class: type[Session], cache: RevocationCache) -> Callable[..., Any]:
    def _after_commit(session: Session) -> None:
        for key in session.info.pop(_PENDING, ()):
            cache.evict(key)

    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    return _after_commit


class PostgresRevocationListener:
    """LISTENs on a dedicated connection; reconnects, and clears the cache after any gap."""

    def __init__(self, database_url: str, cache: RevocationCache) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.cache = cache
        self.connected = asyncio.Event()

    async def run(self) -> None:
        import asyncpg

        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("revocation listener cannot connect: %s", exc)
                await asyncio.sleep(1)
                continue
            closed = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, done=closed: done.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                # Anything revoked while we were not listening is unknown: start afresh.
                self.cache.clear()
                self.connected.set()
                await closed.wait()
                log.warning("revocation listener lost its connection; reconnecting")
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("revocation listener failed: %s", exc)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.cache.evict(payload)
