"""/subscriptions and /deliveries: admin API of the delivery pipeline (`events:manage`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from globeguard.events.subscriptions.schemas import (
    NewSecret,
    SecretRotate,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPage,
    SubscriptionRead,
    SubscriptionUpdate,
)
from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.limits import INT64_MAX

router = APIRouter(prefix="/api/v1", tags=["events"])
Manager = Annotated[Principal, Depends(require(Permission.EVENTS_MANAGE))]
Status = Literal["pending", "inflight", "succeeded", "dead"]
Redrivable = Literal["dead", "succeeded"]
DEAD_STATUS: Redrivable = "dead"


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    event_seq: int
    subscription_id: uuid.UUID
    status: str
    attempts: int
    lease_expiries: int
    redrives: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    dead_reason: str | None
    created_at: datetime
    finished_at: datetime | None


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    attempted_at: datetime
    duration_ms: int
    outcome: str
    status_code: int | None
    error: str | None
    response: str | None


class DeliveryDetail(DeliveryRead):
    attempts_log: list[AttemptRead]


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_after: int | None


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delivery_ids: list[int] | None = Field(None, min_length=1, max_length=10_000)
    since: datetime | None = None
    until: datetime | None = None
    statuses: list[Redrivable] = Field(default_factory=lambda: [DEAD_STATUS])


class DeliveryRedrive(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delivery_ids: list[int] = Field(min_length=1, max_length=10_000)
    statuses: list[Redrivable] = Field(default_factory=lambda: [DEAD_STATUS])


class RedriveResult(BaseModel):
    redriven: int
    first_at: datetime | None
    last_at: datetime | None


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated)
async def create_subscription(
    body: SubscriptionCreate, app: ContainerDep, session: DbSession, principal: Manager
):
    """Create a subscription. The signing secret (and the ed25519 public key) is shown once.
    Personal data (`include_pii`) is reading users, as on the event stream: `users:read`."""
    if body.include_pii:
        principal.require(Permission.USERS_READ)
    view, secret, public = await app.subscriptions.create(session, body)
    read = app.subscriptions.read_model(view)
    return SubscriptionCreated(**read.model_dump(), signing_secret=secret, public_key=public)


@router.get("/subscriptions", response_model=SubscriptionPage)
async def list_subscriptions(app: ContainerDep, session: DbSession, _: Manager):
    views = await app.subscriptions.all(session)
    return SubscriptionPage(items=[app.subscriptions.read_model(v) for v in views])


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
async def get_subscription(
    subscription_id: uuid.UUID, app: ContainerDep, session: DbSession, _: Manager
):
    return app.subscriptions.read_model(await app.subscriptions.view(session, subscription_id))


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
async def update_subscription(
    subscription_id: uuid.UUID,
    body: SubscriptionUpdate,
    app: ContainerDep,
    session: DbSession,
    principal: Manager,
):
    """Change it; `enabled: false` pauses delivery (pending deliveries wait), `true` resumes."""
    if body.include_pii:
        principal.require(Permission.USERS_READ)
    view = await app.subscriptions.update(session, subscription_id, body)
    return app.subscriptions.read_model(view)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: uuid.UUID, app: ContainerDep, session: DbSession, _: Manager
) -> Response:
    await app.subscriptions.delete(session, subscription_id)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/secrets", status_code=201, response_model=NewSecret)
async def rotate_secret(
    subscription_id: uuid.UUID,
    body: SecretRotate,
    app: ContainerDep,
    session: DbSession,
    _: Manager,
):
    """A new signing key. Requests are signed with old and new keys for `overlap_seconds`."""
    return await app.subscriptions.rotate(session, subscription_id, body)


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    subscription_id: uuid.UUID,
    app: ContainerDep,
    session: DbSession,
    _: Manager,
    status: Annotated[list[Status] | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    rows, next_after = await app.deliveries.page(
        session, subscription_id, statuses=list(status or []), after=after, limit=limit
    )
    return DeliveryPage(items=[DeliveryRead.model_validate(r) for r in rows], next_after=next_after)


@router.post("/subscriptions/{subscription_id}/redrive", response_model=RedriveResult)
async def redrive_subscription(
    subscription_id: uuid.UUID,
    body: RedriveRequest,
    app: ContainerDep,
    session: DbSession,
    _: Manager,
):
    """Send dead deliveries again (those named, or those created in [since, until)), oldest
    first, released at the configured redrive rate."""
    done = await app.deliveries.redrive(
        session,
        subscription_id=subscription_id,
        ids=body.delivery_ids,
        since=body.since,
        until=body.until,
        statuses=body.statuses,
    )
    return RedriveResult(redriven=done.count, first_at=done.first_at, last_at=done.last_at)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(
    delivery_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    app: ContainerDep,
    session: DbSession,
    _: Manager,
):
    delivery, attempts = await app.deliveries.get(session, delivery_id)
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        attempts_log=[AttemptRead.model_validate(a) for a in attempts],
    )


@router.post("/deliveries/redrive", response_model=RedriveResult)
async def redrive_deliveries(
    body: DeliveryRedrive, app: ContainerDep, session: DbSession, _: Manager
):
    """Send the named deliveries again, whatever their subscription."""
    done = await app.deliveries.redrive(session, ids=body.delivery_ids, statuses=body.statuses)
    return RedriveResult(redriven=done.count, first_at=done.first_at, last_at=done.last_at)
