"""Rendered `GET /users/me` bodies, per process.

`/users/me` is the hottest authenticated read; serving it from memory keeps it a few times
cheaper than a database round trip (~0.3-0.5 ms here). Entries are evicted when a change to
the user commits (here at once, elsewhere through PostgreSQL NOTIFY) and expire after `ttl_s`
whatever happens, which bounds staleness if a notification is lost. Once an entry expires,
the request that finds it so renders it again while the others keep the previous body (see
kit.ttl_cache): all requests in flight used to render it together.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from globeguard.kit.ttl_cache import TtlCache


class UserViewCache(TtlCache[str, bytes]):
    """User id → the rendered body; an announced user id evicts it (session keys never
    match)."""

    def __init__(
        self, ttl_s: float, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(ttl_s, max_entries, clock=clock)
