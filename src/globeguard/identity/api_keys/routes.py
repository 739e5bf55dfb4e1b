"""/api-keys: create (shown once), list, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from globeguard.identity.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from globeguard.identity.dependencies import ContainerDep, CurrentUser, DbSession
from globeguard.identity.permissions import Permission
from globeguard.kit.errors import Forbidden

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentUser, app: ContainerDep, session: DbSession
):
    """A key for the caller's own account. Its scopes can never exceed the presenting
    credential's own permissions nor the owner's roles, and shrink with the owner's roles."""
    assert principal.user_id is not None
    key, secret = await app.api_keys.create(
        session,
        principal.user_id,
        body.name,
        body.scopes,
        body.expires_at,
        presenter_scopes=principal.scopes,
        actor=principal.actor,
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), api_key=secret)


@router.get("", response_model=list[ApiKeyRead])
async def list_api_keys(
    principal: CurrentUser,
    app: ContainerDep,
    session: DbSession,
    user_id: uuid.UUID | None = Query(default=None, description="Admins: another user's keys."),
):
    assert principal.user_id is not None
    owner = user_id or principal.user_id
    if owner != principal.user_id and not principal.has(Permission.USERS_READ):
        raise Forbidden("listing another user's keys needs 'users:read'")
    return await app.api_keys.of_user(session, owner)


@router.delete("/{key_uuid}", response_model=ApiKeyRead)
async def revoke_api_key(
    key_uuid: uuid.UUID, principal: CurrentUser, app: ContainerDep, session: DbSession
):
    owner = None if principal.has(Permission.USERS_WRITE) else principal.user_id
    key = await app.api_keys.get(session, key_uuid, owner)
    await app.roles.ensure_may_change(session, key.user_id, principal)
    return await app.api_keys.revoke(session, key, principal.actor)
