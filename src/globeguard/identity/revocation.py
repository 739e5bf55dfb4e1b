"""Live revocation of access tokens without a write per request.

Each token carries its subject's token version and session id. A process checks them against
a small cache of (token_version, status, session revoked) read from the database at most once
per `ttl` per subject and session, by one request while the others keep the previous state
(kit.ttl_cache). A change that revokes tokens (logout, logout-all, block,
delete, role change) evicts the cache entry after its transaction commits; on PostgreSQL it
also sends NOTIFY in that transaction, so every other process evicts it as soon as the change
is committed. `ttl` only bounds staleness if the notification channel is down.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from globeguard.db.listen import PostgresListener
from globeguard.kit.ttl_cache import TtlCache

CHANNEL = "globeguard_revocation"


@dataclass(frozen=True, slots=True)
class SubjectState:
    token_version: int
    active: bool
    session_revoked: bool


class Evictable(Protocol):
    def evict(self, key: str) -> None: ...

    def clear(self) -> None: ...


class RevocationCache:
    """(subject, session id) → its state, for `ttl_s`, refreshed ahead by one background load
    (see kit.ttl_cache). An announced subject drops all its sessions; `session:<sid>` one."""

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cache: TtlCache[tuple[str, str | None], SubjectState] = TtlCache(
            ttl_s, max_entries, _tags, clock
        )

    @property
    def ttl_s(self) -> float:
        return self._cache.ttl_s

    def get(self, subject: str, session_id: str | None) -> SubjectState | None:
        return self._cache.get((subject, session_id))

    def put(self, subject: str, session_id: str | None, state: SubjectState) -> None:
        self._cache.put((subject, session_id), state)

    async def get_or_load(
        self,
        subject: str,
        session_id: str | None,
        load: Callable[[], Awaitable[SubjectState | None]],
    ) -> SubjectState | None:
        return await self._cache.get_or_load((subject, session_id), load)

    def evict(self, key: str) -> None:
        """`key` is a subject id (user uuid / client id) or `session:<sid>`."""
        self._cache.evict(key)

    def clear(self) -> None:
        self._cache.clear()

    async def close(self) -> None:
        await self._cache.close()

    def __len__(self) -> int:
        return len(self._cache)


def _tags(key: tuple[str, str | None], _state: SubjectState) -> tuple[str, ...]:
    subject, session_id = key
    return (subject,) if session_id is None else (subject, f"session:{session_id}")


_PENDING = "globeguard.changed_keys"


async def announce(session: AsyncSession, key: str, *, broadcast: bool = True) -> None:
    """Tell every process's caches that `key` (a subject id or `session:<sid>`) changed, once
    this transaction commits. `broadcast=False` evicts only here and lets other processes
    catch up within the cache TTL: for cosmetic changes (sign-in counters) that would
    otherwise cost a NOTIFY per sign-in."""
    session.sync_session.info.setdefault(_PENDING, set()).add(key)
    if broadcast and session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: other processes hear it only if and when we commit.
        await session.execute(text("SELECT pg_notify(:c, :k)"), {"c": CHANNEL, "k": key})


async def announce_many(session: AsyncSession, keys: Sequence[str]) -> None:
    """`announce` for a batch of keys in one statement: an import batch announces up to 1000
    users, and one `pg_notify` round trip each cost ~1 ms here, five times the batch's own
    writes."""
    if not keys:
        return
    session.sync_session.info.setdefault(_PENDING, set()).update(keys)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_NOTIFY_MANY, {"c": CHANNEL, "keys": list(keys)})


_NOTIFY_MANY = text("SELECT pg_notify(:c, k) FROM unnest(CAST(:keys AS text[])) AS k")


def install_commit_hook(session_class: type[Session], caches: Sequence[Evictable]) -> None:
    def _after_commit(session: Session) -> None:
        for key in session.info.pop(_PENDING, ()):
            for cache in caches:
                cache.evict(key)

    def _after_rollback(session: Session, _transaction: Any) -> None:
        session.info.pop(_PENDING, None)

    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_soft_rollback", _after_rollback)


class PostgresRevocationListener(PostgresListener):
    """Evicts what other processes announce; clears the caches after any gap, since what was
    revoked while no one listened is unknown."""

    def __init__(self, database_url: str, caches: Sequence[Evictable]) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.caches = caches
        super().__init__(
            url.render_as_string(hide_password=False),
            CHANNEL,
            self._evict,
            self._clear,
            "revocation listener",
        )

    def _evict(self, key: str) -> None:
        for cache in self.caches:
            cache.evict(key)

    def _clear(self) -> None:
        for cache in self.caches:
            cache.clear()
