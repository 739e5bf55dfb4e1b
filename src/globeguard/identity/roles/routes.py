"""/roles: built-in `admin` and `user`, plus custom roles over the permission list."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal

router = APIRouter(prefix="/api/v1/roles", tags=["roles"])
RoleAdmin = Annotated[Principal, Depends(require(Permission.ROLES_MANAGE))]


class RoleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    description: str | None = Field(default=None, max_length=255)
    permissions: list[Permission] = Field(default_factory=list)


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=255)
    permissions: list[Permission] | None = None


class RoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    description: str | None
    permissions: list[str]
    builtin: bool
    created_at: datetime


@router.get("", response_model=list[RoleRead])
async def list_roles(_: RoleAdmin, app: ContainerDep, session: DbSession):
    return await app.roles.all(session)


@router.get("/permissions", response_model=list[str])
async def list_permissions(_: RoleAdmin):
    """The closed list of permissions a role can grant."""
    return [p.value for p in Permission]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RoleRead)
async def create_role(
    body: RoleCreate, principal: RoleAdmin, app: ContainerDep, session: DbSession
):
    """Only permissions the presenting credential holds itself can go into a role."""
    return await app.roles.create(
        session,
        body.name,
        body.description,
        [p.value for p in body.permissions],
        presenter_scopes=principal.scopes,
        actor=principal.actor,
    )


@router.get("/{role_id}", response_model=RoleRead)
async def read_role(role_id: uuid.UUID, _: RoleAdmin, app: ContainerDep, session: DbSession):
    return await app.roles.get(session, role_id)


@router.patch("/{role_id}", response_model=RoleRead)
async def update_role(
    role_id: uuid.UUID,
    body: RoleUpdate,
    principal: RoleAdmin,
    app: ContainerDep,
    session: DbSession,
):
    role = await app.roles.get(session, role_id)
    permissions = None if body.permissions is None else [p.value for p in body.permissions]
    return await app.roles.update(
        session,
        role,
        body.description,
        permissions,
        presenter_scopes=principal.scopes,
        actor=principal.actor,
    )


@router.delete("/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(
    role_id: uuid.UUID, principal: RoleAdmin, app: ContainerDep, session: DbSession
):
    role = await app.roles.get(session, role_id)
    await app.roles.delete(session, role, presenter_scopes=principal.scopes, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
