"""Test doubles for the pipeline: a clock that moves only when told, receivers that record
what they got and answer as scripted, and shortcuts to write events and subscriptions."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from globeguard.events.catalog import EventType
from globeguard.events.delivery.dispatcher import Dispatcher
from globeguard.events.outbox import event_row, record_many
from globeguard.events.sinks.guard import TargetGuard
from globeguard.events.sinks.http import Answer as HttpAnswer
from globeguard.events.sinks.port import Sink
from globeguard.events.sinks.webhook import WebhookSink
from globeguard.events.subscriptions.schemas import SubscriptionCreate
from globeguard.wiring import Container


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        # Near the real time: outbox rows are stamped with the real clock.
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


@dataclass
class Received:
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


Answer = Callable[[Received], httpx.Response]


def ok(_: Received) -> httpx.Response:
    return httpx.Response(200, text="ok")


@dataclass
class Receiver:
    """Every request it was sent, and a scriptable answer (200 by default)."""

    answer: Answer = ok
    requests: list[Received] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        got = Received(str(request.url), dict(request.headers), request.content)
        self.requests.append(got)
        return self.answer(got)

    def to(self, host: str) -> list[Received]:
        return [r for r in self.requests if host in r.url]

    def ids(self, host: str | None = None) -> list[str]:
        return [r.webhook_id for r in self.requests if host is None or host in r.url]


Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class MemoryTransport:
    """The webhook sink's transport, answered in memory by a handler of httpx requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float
    ) -> HttpAnswer:
        answer = self.handler(httpx.Request("POST", url, content=body, headers=dict(headers)))
        response = await answer if inspect.isawaitable(answer) else answer
        return HttpAnswer(
            response.status_code, response.headers.get("retry-after"), response.content
        )

    async def close(self) -> None:
        pass


def webhook_sinks(receiver: Receiver, handler: Handler | None = None) -> dict[str, Sink]:
    transport = MemoryTransport(handler or receiver.handle)
    return {"webhook": WebhookSink(transport, TargetGuard(allow_private=True))}


def dispatcher(
    container: Container,
    receiver: Receiver,
    clock: FakeClock,
    *,
    worker_id: str | None = None,
    **overrides: Any,
) -> Dispatcher:
    settings = container.settings.delivery.model_copy(update=overrides)
    return Dispatcher(
        container.db,
        container.subscriptions,
        webhook_sinks(receiver),
        settings,
        metrics=container.metrics,
        clock=clock,
        worker_id=worker_id,
    )


async def subscribe(container: Container, name: str, **fields: Any) -> tuple[uuid.UUID, str]:
    """A webhook subscription to http://<name>.test/hook; its id and whsec_ secret."""
    data = SubscriptionCreate(name=name, target=f"http://{name}.test/hook", **fields)
    async with container.db.transaction() as session:
        view, secret, _ = await container.subscriptions.create(session, data)
    return view.subscription.id, secret


async def emit(
    container: Container,
    user: uuid.UUID,
    type_: EventType = EventType.USER_UPDATED,
    version: int | None = None,
    **payload: Any,
) -> str:
    """One event about `user`, committed on its own as a user change is."""
    row = user_event(user, type_, version, **payload)
    async with container.db.transaction() as session:
        await record_many(session, [row])
    return str(row["event_id"])


def user_event(
    user: uuid.UUID,
    type_: EventType = EventType.USER_UPDATED,
    version: int | None = None,
    **payload: Any,
) -> dict[str, Any]:
    """The outbox row of one event about `user`, as `emit` commits it."""
    return event_row(
        type_,
        actor="system",
        aggregate_type="user",
        aggregate_id=str(user),
        user_id=user,
        aggregate_version=version,
        payload={"user_id": str(user), **payload},
    )
