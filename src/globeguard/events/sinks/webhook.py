"""Webhook sink: POST the signed body with httpx, no redirects, bounded time and answer size."""

from __future__ import annotations

import time

import httpx

from globeguard.events.delivery.schedule import parse_retry_after
from globeguard.events.sinks.guard import TargetGuard, UnsafeTarget
from globeguard.events.sinks.port import Message, SendResult


class WebhookSink:
    def __init__(
        self,
        client: httpx.AsyncClient,
        guard: TargetGuard,
        *,
        response_excerpt_bytes: int = 1000,
    ) -> None:
        self.client = client
        self.guard = guard
        self.excerpt = response_excerpt_bytes

    @classmethod
    def create(
        cls, *, timeout_s: float, max_connections: int, guard: TargetGuard, excerpt: int
    ) -> WebhookSink:
        client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"user-agent": "Globeguard-Webhooks/1"},
        )
        return cls(client, guard, response_excerpt_bytes=excerpt)

    async def send(self, message: Message) -> SendResult:
        began = time.perf_counter()
        try:
            await self.guard.check(message.target)
        except UnsafeTarget as exc:
            return SendResult(None, 0, error=f"refused: {exc}"[:200])
        try:
            response = await self.client.post(
                message.target, content=message.body, headers=message.headers
            )
        except httpx.TimeoutException:
            return SendResult(None, _ms(began), timed_out=True, error="timeout")
        except httpx.HTTPError as exc:
            return SendResult(None, _ms(began), error=f"{type(exc).__name__}: {exc}"[:200])
        return SendResult(
            response.status_code,
            _ms(began),
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            response=response.content[: self.excerpt].decode("utf-8", "replace"),
        )

    async def close(self) -> None:
        await self.client.aclose()


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
