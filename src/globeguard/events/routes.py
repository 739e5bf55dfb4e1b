"""/audit: the outbox read as an audit trail; /events: the public event stream."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from globeguard.events.catalog import EventType
from globeguard.events.filters import InvalidPattern, validate
from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import Unprocessable
from globeguard.kit.limits import INT64_MAX

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
# A sequence number is a BIGINT: a larger one is refused, never sent to the database.
After = Annotated[int, Query(ge=0, le=INT64_MAX, description="Return events after this seq.")]


class AuditEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    event_id: str
    type: str
    occurred_at: datetime
    actor: str
    user_id: uuid.UUID | None
    aggregate_type: str
    aggregate_id: str | None
    aggregate_version: int | None
    payload: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_after: int | None


@router.get("", response_model=AuditPage)
async def read_audit(
    app: ContainerDep,
    session: DbSession,
    _: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    user_id: uuid.UUID | None = None,
    type: Annotated[list[EventType] | None, Query()] = None,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Security-relevant changes, oldest first. Page on with `after=next_after`."""
    rows, next_after = await app.audit.page(
        session, user_id=user_id, types=[t.value for t in type or []], after=after, limit=limit
    )
    return AuditPage(items=[AuditEvent.model_validate(r) for r in rows], next_after=next_after)


stream_router = APIRouter(prefix="/api/v1/events", tags=["events"])


class StreamPage(BaseModel):
    items: list[dict[str, Any]]
    next_after: int | None


@stream_router.get("", response_model=StreamPage)
async def read_stream(
    app: ContainerDep,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.EVENTS_READ))],
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[list[str] | None, Query(description="Patterns: user.*, user.**")] = None,
):
    """Every event, oldest first, as subscribers receive it (plus `seq`). Events are kept for
    the outbox retention (14 days). Personal data is included only for callers that may read
    users (`users:read`). Page on with `after=next_after`."""
    patterns = [_pattern(p) for p in type or []]
    items, next_after = await app.event_stream.page(
        session,
        after=after,
        limit=limit,
        patterns=patterns,
        include_pii=principal.has(Permission.USERS_READ),
    )
    return StreamPage(items=items, next_after=next_after)


def _pattern(value: str) -> str:
    try:
        return validate(value)
    except InvalidPattern as exc:
        raise Unprocessable(str(exc), code="invalid_pattern") from exc
