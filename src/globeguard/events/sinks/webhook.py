"""Webhook sink: POST the signed body, no redirects, bounded time and answer size.

The HTTP work is a `Transport`: in production `HttpClient` (sinks/http.py: kept-alive
connections per origin, at most `lanes` each, made only to addresses the SSRF guard
approved); tests hand in an in-memory one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from globeguard.events.sinks.guard import TargetGuard, UnsafeTarget
from globeguard.events.sinks.http import (
    Answer,
    HttpClient,
    HttpError,
    HttpTimeout,
    Proxy,
    tls_context,
)
from globeguard.events.sinks.port import Message, SendResult
from globeguard.kit.retry_after import parse_retry_after

DEFAULT_TIMEOUT_S = 15.0


class Transport(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float
    ) -> Answer:
        """The answer, or HttpTimeout / HttpError / UnsafeTarget."""
        ...

    async def close(self) -> None: ...


class WebhookSink:
    def __init__(
        self,
        transport: Transport,
        guard: TargetGuard,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        response_excerpt_bytes: int = 1000,
    ) -> None:
        self.transport = transport
        self.guard = guard
        self.timeout_s = timeout_s
        self.excerpt = response_excerpt_bytes

    @classmethod
    def create(
        cls,
        *,
        timeout_s: float,
        lanes: int,
        guard: TargetGuard,
        excerpt: int,
        ca_bundle: Path | None = None,
        proxy_url: str | None = None,
    ) -> WebhookSink:
        client = HttpClient(
            resolve=guard.addresses,
            connections_per_host=lanes,
            excerpt=excerpt,
            ssl_context=tls_context(ca_bundle),  # read here, at start-up, not on the loop
            proxy=Proxy.parse(proxy_url) if proxy_url else None,
        )
        return cls(client, guard, timeout_s=timeout_s, response_excerpt_bytes=excerpt)

    async def send(self, message: Message) -> SendResult:
        began = time.perf_counter()
        try:
            await self.guard.check(message.target)
        except UnsafeTarget as exc:
            return SendResult(None, 0, error=f"refused: {exc}"[:200])
        try:
            answer = await self.transport.post(
                message.target, message.body, message.headers, timeout_s=self.timeout_s
            )
        except UnsafeTarget as exc:  # resolved again for a new connection, and refused
            return SendResult(None, _ms(began), error=f"refused: {exc}"[:200])
        except HttpTimeout:
            return SendResult(None, _ms(began), timed_out=True, error="timeout")
        except HttpError as exc:
            return SendResult(None, _ms(began), error=f"{type(exc).__name__}: {exc}"[:200])
        # Most answers carry no Retry-After: no clock read for them.
        retry_after = answer.retry_after
        return SendResult(
            answer.status,
            _ms(began),
            retry_after_s=parse_retry_after(retry_after, datetime.now(UTC))
            if retry_after
            else None,
            response=answer.excerpt[: self.excerpt].decode("utf-8", "replace"),
        )

    async def close(self) -> None:
        await self.transport.close()


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
