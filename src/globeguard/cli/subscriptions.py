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

from .common import HumanHelp, command_group, run_with_container

app = command_group("Event subscriptions: webhooks and NATS.")
console = Console()
T = TypeVar("T")
ID_ARGUMENT = typer.Argument(..., metavar="ID", help="The subscription's id.")


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


@app.command("create", cls=HumanHelp)
def create(
    name: str = typer.Argument(..., metavar="NAME", help="A name to tell it by."),
    target: str = typer.Argument(
        ..., metavar="TARGET", help="Webhook URL, or JetStream subject prefix."
    ),
    kind: str = typer.Option("webhook", metavar="KIND", help="webhook or nats."),
    event: list[str] = typer.Option(
        ["**"],
        "--event",
        "-e",
        metavar="PATTERN",
        help="Event-type pattern, e.g. 'user.*'; repeat for more (default: every event).",
        show_default=False,
    ),
    ordered: bool = typer.Option(False, "--ordered", help="Keep each user's events in order."),
    pii: bool = typer.Option(False, "--pii", help="Include personal data in payloads."),
    rate_limit: float | None = typer.Option(
        None, metavar="N", help="Deliveries per second at most (default: no limit)."
    ),
    max_in_flight: int | None = typer.Option(
        None,
        metavar="N",
        help="Deliveries in flight at once (default: GLOBEGUARD_DELIVERY__DEFAULT_MAX_IN_FLIGHT).",
    ),
    ed25519: bool = typer.Option(
        False, "--ed25519", help="Also sign with an ed25519 key (scheme v1a)."
    ),
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


@app.command("list", cls=HumanHelp)
def list_() -> None:
    """List every subscription with its target, events and state."""

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


@app.command("update", cls=HumanHelp)
def update(
    subscription_id: uuid.UUID = ID_ARGUMENT,
    enable: bool | None = typer.Option(
        None, "--enable/--disable", help="Resume deliveries, or pause them."
    ),
    target: str | None = typer.Option(
        None, metavar="TARGET", help="New webhook URL, or JetStream subject prefix."
    ),
    event: list[str] | None = typer.Option(
        None,
        "--event",
        "-e",
        metavar="PATTERN",
        help="Replace the event-type patterns; repeat for more.",
    ),
    rate_limit: float | None = typer.Option(
        None, metavar="N", help="Deliveries per second at most."
    ),
    max_in_flight: int | None = typer.Option(
        None, metavar="N", help="Deliveries in flight at once."
    ),
) -> None:
    """Change a subscription: pause or resume it, its target, its events, its limits."""
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


@app.command("delete", cls=HumanHelp)
def delete(subscription_id: uuid.UUID = ID_ARGUMENT) -> None:
    """Delete it with its deliveries: nothing more is sent to it."""

    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            await container.subscriptions.delete(session, subscription_id)

    _run(work)
    typer.echo(f"deleted {subscription_id}")


@app.command("rotate", cls=HumanHelp)
def rotate(
    subscription_id: uuid.UUID = ID_ARGUMENT,
    scheme: str = typer.Option("v1", metavar="SCHEME", help="v1 (whsec_) or v1a (ed25519)."),
    overlap: int = typer.Option(
        86_400, metavar="SECONDS", help="How long the old key keeps signing too."
    ),
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


@app.command("redrive", cls=HumanHelp)
def redrive(
    subscription_id: uuid.UUID | None = typer.Option(
        None, "--subscription", "-s", metavar="ID", help="Only this subscription's deliveries."
    ),
    delivery: list[int] | None = typer.Option(
        None, "--delivery", "-d", metavar="ID", help="This delivery; repeat for more."
    ),
    since: datetime | None = typer.Option(
        None, metavar="TIME", help="Deliveries created at or after, YYYY-MM-DD[THH:MM:SS] UTC."
    ),
    until: datetime | None = typer.Option(
        None, metavar="TIME", help="Deliveries created before, YYYY-MM-DD[THH:MM:SS] UTC."
    ),
    include_succeeded: bool = typer.Option(
        False, "--include-succeeded", help="Resend succeeded ones too."
    ),
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
