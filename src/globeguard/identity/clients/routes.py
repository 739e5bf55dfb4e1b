"""/clients: machine-to-machine clients for the client_credentials grant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])
ClientAdmin = Annotated[Principal, Depends(require(Permission.CLIENTS_MANAGE))]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Permission] = Field(default_factory=list)


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    client_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(ClientRead):
    client_secret: str = Field(description="Shown once; store it now.")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientCreated)
async def create_client(
    body: ClientCreate, principal: ClientAdmin, app: ContainerDep, session: DbSession
):
    client, secret = await app.clients.create(
        session,
        body.name,
        [s.value for s in body.scopes],
        principal.user_id,
        presenter_scopes=principal.scopes,
        actor=principal.actor,
    )
    return ClientCreated(**ClientRead.model_validate(client).model_dump(), client_secret=secret)


@router.get("", response_model=list[ClientRead])
async def list_clients(_: ClientAdmin, app: ContainerDep, session: DbSession):
    return await app.clients.all(session)


@router.delete("/{row_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_client(
    row_id: uuid.UUID, principal: ClientAdmin, app: ContainerDep, session: DbSession
):
    """Revoke the client: new grants fail and its live access tokens stop at once."""
    await app.clients.revoke(session, await app.clients.get(session, row_id), principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
