"""Counters in Redis, shared by every process: INCR plus an expiry set on the first hit."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisCounters:
    def __init__(self, url: str, prefix: str = "globeguard:") -> None:
        self._redis = Redis.from_url(url)
        self.prefix = prefix

    async def hit(self, key: str, window_s: float) -> int:
        name = self.prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: only the first hit of a window sets the expiry (Redis >= 7.0).
            pipe.pexpire(name, max(1, int(window_s * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def peek(self, key: str) -> tuple[int, float]:
        name = self.prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            value, ttl_ms = await pipe.execute()
        if value is None or ttl_ms is None or ttl_ms <= 0:
            return 0, 0.0
        return int(value), ttl_ms / 1000

    async def reset(self, key: str) -> None:
        await self._redis.delete(self.prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()
