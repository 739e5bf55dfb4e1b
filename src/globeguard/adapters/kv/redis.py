"""Counters in Redis, shared by every process. Each count is one Lua script: Redis runs a
script alone, so comparing with the limit and counting cannot interleave with another
process's attempt."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from globeguard.adapters.kv.port import Reservation
from globeguard.kit.errors import AppError

log = logging.getLogger(__name__)

# Each command takes well under a millisecond, so a burst of sign-ins waits its turn for one
# of 64 connections instead of failing (the default pool refuses the 101st at once).
MAX_CONNECTIONS = 64
CONNECTION_WAIT_S = 5


class CountersUnavailable(AppError):
    status, code, title = 503, "counters_unavailable", "Service unavailable"

    def __init__(self) -> None:
        super().__init__("the rate-limit store is unreachable", headers={"Retry-After": "5"})


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # The client only learns "503"; whoever runs the service needs the cause.
        log.warning("rate-limit store unreachable: %s: %s", type(exc).__name__, exc)
        raise CountersUnavailable() from exc


# KEYS[1] counter; ARGV[1] limit (negative: none); ARGV[2] window in ms.
# Returns {taken (0/1), count, ms left}. The first count of a window sets its expiry.
_RESERVE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
if limit >= 0 and count >= limit then
  return {0, count, redis.call('PTTL', KEYS[1])}
end
count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  left = tonumber(ARGV[2])
  redis.call('PEXPIRE', KEYS[1], left)
end
return {1, count, left}
"""

# DECR keeps the key's expiry; a closed window (missing key) is left alone, so a refund
# never creates a key without one.
_REFUND = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


class RedisCounters:
    def __init__(self, url: str, prefix: str = "globeguard:", *, timeout_s: float = 5.0) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=CONNECTION_WAIT_S,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._redis = Redis.from_pool(pool)
        self.prefix = prefix
        self._reserve = self._redis.register_script(_RESERVE)
        self._refund = self._redis.register_script(_REFUND)

    async def hit(self, key: str, window_s: float) -> int:
        return (await self._count(key, -1, window_s)).count

    async def reserve(self, key: str, limit: int, window_s: float) -> Reservation:
        return await self._count(key, limit, window_s)

    async def refund(self, key: str) -> None:
        with _reachable():
            await self._refund(keys=[self.prefix + key])

    async def peek(self, key: str) -> tuple[int, float]:
        name = self.prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                value, ttl_ms = await pipe.execute()
        if value is None or ttl_ms is None or ttl_ms <= 0:
            return 0, 0.0
        return int(value), ttl_ms / 1000

    async def reset(self, key: str) -> None:
        with _reachable():
            await self._redis.delete(self.prefix + key)

    async def remember(self, key: str, member: str, keep: int, ttl_s: float) -> None:
        # A sorted set scored by the time of addition: trimming by rank keeps the newest.
        name = self.prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {member: time.time()})
                pipe.zremrangebyrank(name, 0, -(keep + 1))
                pipe.pexpire(name, _ms(ttl_s))
                await pipe.execute()

    async def recalls(self, key: str, member: str) -> bool:
        with _reachable():
            return await self._redis.zscore(self.prefix + key, member) is not None

    async def close(self) -> None:
        await self._redis.aclose()

    async def _count(self, key: str, limit: int, window_s: float) -> Reservation:
        with _reachable():
            taken, count, left_ms = await self._reserve(
                keys=[self.prefix + key], args=[limit, _ms(window_s)]
            )
        return Reservation(taken=bool(taken), count=int(count), left_s=max(0, left_ms) / 1000)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
