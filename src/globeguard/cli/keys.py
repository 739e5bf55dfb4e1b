from __future__ import annotations

import typer

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.wiring import Container

from .common import HumanHelp, command_group, run_with_container

app = command_group("JWT signing keys.")


@app.command("rotate", cls=HumanHelp)
def rotate() -> None:
    """Promote the next key to current and publish a new next key. The old key stays in the
    JWKS until every token it signed has expired. Running servers pick it up within a minute,
    or at once when they see a token signed by it."""

    async def _work(container: Container) -> tuple[str, str]:
        async with container.db.transaction() as session:
            retired, current = await container.signing_keys.rotate(session)
            await record(
                session,
                EventType.SIGNING_KEY_ROTATED,
                actor="system",
                aggregate_type="signing_key",
                aggregate_id=current,
                user_id=None,
                payload={"retired": retired, "current": current},
            )
            return retired, current

    retired, current = run_with_container(_work)
    typer.echo(f"current key: {current} (was {retired}, published until its tokens expire)")
