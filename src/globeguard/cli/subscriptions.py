"""`globeguard subscriptions …`: the admin API's subscription and redrive operations, for
operators at a shell on the server."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from globeguard.events.subscriptions.schemas import (
    SecretRotate,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from globeguard.kit.errors import AppError
from globeguard.wiring import Container

from .common import run_with_container

app = typer.Typer(help="Event subscriptions: webhooks and NATS.", no_args_is_help=True)
console = Console()
T = TypeVar("T")


def _run(work: Callable[[Container], Awaitable[T]]) -> T:
    try:
        return run_with_container(work)
    except (AppError, ValidationError) as exc:
        message = exc.detail if isinstance(exc, AppError) else str(exc)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from exc


def _print(row: Any) -> None:
    state = "enabled" if row.enabled else f"disabled ({row.disabled_reason})"
    typer.echo(
        f"{row.id}  {row.name}  {row.kind} {row.target}  {','.join(row.event_types)}  "
        f"{'ordered ' if row.ordered else ''}{state}"
    )


@app.command("create")
def create(
    name: str,
    target: str = typer.Argument(..., help="Webhook URL, or JetStream subject prefix"),
    kind: str = typer.Option("webhook", help="webhook or nats"),
    event: list[str] = typer.Option(["**"], "--event", "-e", help="Event-type pattern"),
    ordered: bool = typer.Option(False, help="Keep each user's events in order"),
    pii: bool = typer.Option(False, help="Include personal data in payloads"),
    rate_limit: float | None = typer.Option(None, help="Deliveries per second"),
    max_in_flight: int | None = typer.Option(None, help="Concurrent deliveries"),
    ed25519: bool = typer.Option(False, help="Also sign with an ed25519 key (v1a)"),
) -> None:
    """Create a subscription and print its signing secret (shown only now)."""

    async def work(container: Container) -> tuple[Any, str, str | None]:
        data = SubscriptionCreate(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            target=target,
            event_types=event,
            ordered=ordered,
            include_pii=pii,
            rate_limit_per_s=rate_limit,
            max_in_flight=max_in_flight,
            ed25519=ed25519,
        )
        async with container.db.transaction() as session:
            view, secret, public = await container.subscriptions.create(session, data)
        return container.subscriptions.read_model(view), secret, public

    row, secret, public = _run(work)
    _print(row)
    typer.echo(f"signing secret: {secret}")
    if public:
        typer.echo(f"ed25519 public key: {public}")


@app.command("list")
def list_() -> None:
    async def work(container: Container) -> list[Any]:
        async with container.db.read() as session:
            views = await container.subscriptions.all(session)
        return [container.subscriptions.read_model(v) for v in views]

    rows = _run(work)
    table = Table("id", "name", "kind", "target", "events", "ordered", "state")
    for row in rows:
        state = "enabled" if row.enabled else f"disabled: {row.disabled_reason}"
        table.add_row(
            str(row.id), row.name, row.kind, row.target, ",".join(row.event_types),
            "yes" if row.ordered else "", state,
        )  # fmt: skip
    console.print(table)


@app.command("update")
def update(
    subscription_id: uuid.UUID,
    enable: bool | None = typer.Option(None, "--enable/--disable", help="Resume or pause"),
    target: str | None = typer.Option(None),
    event: list[str] | None = typer.Option(None, "--event", "-e"),
    rate_limit: float | None = typer.Option(None),
    max_in_flight: int | None = typer.Option(None),
) -> None:
    changes: dict[str, Any] = {
        "enabled": enable,
        "target": target,
        "event_types": event or None,
        "rate_limit_per_s": rate_limit,
        "max_in_flight": max_in_flight,
    }
    data = SubscriptionUpdate(**{k: v for k, v in changes.items() if v is not None})

    async def work(container: Container) -> Any:
        async with container.db.transaction() as session:
            view = await container.subscriptions.update(session, subscription_id, data)
        return container.subscriptions.read_model(view)

    _print(_run(work))


@app.command("delete")
def delete(subscription_id: uuid.UUID) -> None:
    """Delete it with its deliveries: nothing more is sent to it."""

    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            await container.subscriptions.delete(session, subscription_id)

    _run(work)
    typer.echo(f"deleted {subscription_id}")


@app.command("rotate")
def rotate(
    subscription_id: uuid.UUID,
    scheme: str = typer.Option("v1", help="v1 (whsec_) or v1a (ed25519)"),
    overlap: int = typer.Option(86_400, help="Seconds the old key keeps signing"),
) -> None:
    """A new signing key; requests carry both signatures during the overlap."""

    async def work(container: Container) -> Any:
        data = SecretRotate(scheme=scheme, overlap_seconds=overlap)  # type: ignore[arg-type]
        async with container.db.transaction() as session:
            return await container.subscriptions.rotate(session, subscription_id, data)

    new = _run(work)
    typer.echo(f"new {new.scheme} secret: {new.secret}")
    if new.public_key:
        typer.echo(f"ed25519 public key: {new.public_key}")


@app.command("redrive")
def redrive(
    subscription_id: uuid.UUID | None = typer.Option(None, "--subscription", "-s"),
    delivery: list[int] | None = typer.Option(None, "--delivery", "-d", help="Delivery id"),
    since: datetime | None = typer.Option(None, help="Deliveries created at or after (UTC)"),
    until: datetime | None = typer.Option(None, help="Deliveries created before (UTC)"),
    include_succeeded: bool = typer.Option(False, help="Resend succeeded ones too"),
) -> None:
    """Send dead deliveries again, oldest first, at the configured redrive rate."""
    statuses = ["dead", "succeeded"] if include_succeeded else ["dead"]

    async def work(container: Container) -> Any:
        async with container.db.transaction() as session:
            return await container.deliveries.redrive(
                session,
                subscription_id=subscription_id,
                ids=delivery or None,
                since=_utc(since),
                until=_utc(until),
                statuses=statuses,
            )

    done = _run(work)
    typer.echo(f"redriven: {done.count}" + (f" (until {done.last_at})" if done.count else ""))


def _utc(value: datetime | None) -> datetime | None:
    from globeguard.kit.clock import as_utc

    return None if value is None else as_utc(value)
