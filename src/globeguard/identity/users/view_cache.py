"""Rendered `GET /users/me` bodies, per process.

`/users/me` is the hottest authenticated read; serving it from memory keeps it a few times
cheaper than a database round trip (~0.3-0.5 ms here). Entries are evicted when a change to
the user commits (here at once, elsewhere through PostgreSQL NOTIFY) and expire after `ttl_s`
whatever happens, which bounds staleness if a notification is lost.
"""

from __future__ import annotations

import time


class UserViewCache:
    def __init__(self, ttl_s: float, max_entries: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}

    def get(self, user_id: str) -> bytes | None:
        hit = self._entries.get(user_id)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            return None
        return hit[1]

    def put(self, user_id: str, body: bytes) -> None:
        if user_id not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[user_id] = (time.monotonic(), body)

    def evict(self, key: str) -> None:
        self._entries.pop(key, None)  # session keys never match a user id

    def clear(self) -> None:
        self._entries.clear()
