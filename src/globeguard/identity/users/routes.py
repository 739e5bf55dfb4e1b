"""/users: self-service on `me`, and administration of everyone (permission-checked)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.dependencies import (
    ClientCtx,
    ContainerDep,
    CurrentPrincipal,
    CurrentUser,
    DbSession,
    require,
)
from globeguard.identity.models import User
from globeguard.identity.permissions import PROFILE_SCOPE, Permission
from globeguard.identity.principal import Principal
from globeguard.identity.search import QueryError, compile_user_filter, parse, top_fields
from globeguard.identity.search.nodes import Node
from globeguard.identity.users.schemas import (
    PasswordChange,
    UserAdminUpdate,
    UserPage,
    UserRead,
    UserSelfUpdate,
)
from globeguard.identity.users.views import user_read
from globeguard.kit.errors import BadRequest, Forbidden
from globeguard.wiring import Container

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class RoleAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(min_length=1, max_length=64)


async def _read(app: Container, session: AsyncSession, user: User) -> UserRead:
    return user_read(user, await app.roles.names_of(session, user.id))


async def _me(app: Container, session: AsyncSession, principal: Principal) -> User:
    assert principal.user_id is not None
    return await app.users.get(session, principal.user_id, include_deleted=False)


def _acting_on(principal: Principal, user_id: uuid.UUID, permission: Permission) -> None:
    """The permission allows acting on anyone; the account itself needs the `profile` scope
    (a key scoped to, say, `login_events:write` must not manage its owner's account)."""
    if principal.has(permission):
        return
    if principal.user_id != user_id:
        raise Forbidden(f"only the account itself or a holder of '{permission}' may do this")
    principal.require(PROFILE_SCOPE)


async def _changeable(
    app: Container,
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    include_deleted: bool,
) -> User:
    """The user a request is about to change; another admin only for a credential that acts
    as admin."""
    user = await app.users.get(session, user_id, include_deleted=include_deleted)
    await app.roles.ensure_may_change(session, user.id, principal)
    return user


@router.get("/me", response_model=UserRead)
async def read_me(principal: CurrentUser, request: Request) -> Response:
    app: Container = request.app.state.container

    async def render() -> bytes:
        async with app.db.read() as session:
            view = await _read(app, session, await _me(app, session, principal))
        return view.model_dump_json().encode()

    # One render for every request that misses at once (a cold start, after an eviction);
    # a change committed while it runs evicts it, so it is not kept.
    body = await app.user_views.get_or_load(principal.subject, render)
    assert body is not None  # render returns bytes or raises (404 for a deleted account)
    return Response(body, media_type="application/json")


@router.patch("/me", response_model=UserRead)
async def update_me(
    body: UserSelfUpdate, principal: CurrentUser, app: ContainerDep, session: DbSession
):
    user = await _me(app, session, principal)
    changes = body.model_dump(exclude_unset=True)
    await app.users.update(session, user, changes, principal.actor)
    return await _read(app, session, user)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(principal: CurrentUser, app: ContainerDep, session: DbSession):
    """Soft delete: sign-in and every credential stop working at once; the username stays
    reserved. An admin can restore the account."""
    await app.users.soft_delete(session, await _me(app, session, principal), principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_my_password(
    body: PasswordChange,
    principal: CurrentUser,
    app: ContainerDep,
    session: DbSession,
    ctx: ClientCtx,
):
    """Change the password. Every other session ends; this one carries on. Wrong current
    passwords count towards the sign-in lockout (429 with Retry-After). A password changed
    by another request meanwhile is not overwritten: 409 `password_changed_concurrently`.
    A verified address is told by email."""
    # Read outside the write transaction: the hashing below must not hold the writer.
    async with app.db.read() as reader:
        user = await _me(app, reader, principal)
    async with app.auth.current_password_check(user, ctx.ip):
        new = await app.users.new_password(user, body.current_password, body.new_password)
        await app.users.change_password(session, new, principal.session_id)
    await app.notices.password_changed(session, new.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/sessions", response_model=list[SessionRead])
async def my_sessions(principal: CurrentUser, app: ContainerDep, session: DbSession):
    assert principal.user_id is not None
    return await _sessions(app, session, principal.user_id, principal.session_id)


async def _sessions(
    app: Container, session: AsyncSession, user_id: uuid.UUID, current: uuid.UUID | None
) -> list[SessionRead]:
    rows = await app.users.live_sessions(session, user_id)
    return [
        SessionRead.model_validate(r).model_copy(update={"current": r.id == current}) for r in rows
    ]


@router.get("", response_model=UserPage)
async def list_users(
    app: ContainerDep,
    session: DbSession,
    _: Annotated[Principal, Depends(require(Permission.USERS_READ))],
    q: Annotated[
        str | None,
        Query(
            max_length=2048,
            description="Search, e.g. "
            "`user_metadata.subscription_tier:free AND NOT status:blocked`",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    include_deleted: bool = False,
):
    """Users in creation order, one page at a time, with no cap on how far you can page.
    Deleted users are left out unless `include_deleted` or the query names `status`."""
    size = min(limit or app.settings.limits.page_size_default, app.settings.limits.page_size_max)
    tree = _parse_query(q)
    where = _compile_query(tree, q, session.get_bind().dialect.name)
    if not include_deleted and "status" not in top_fields(tree):
        deleted_hidden = User.status != "deleted"
        where = deleted_hidden if where is None else (where & deleted_hidden)
    rows, next_cursor = await app.users.page(session, where, cursor, size)
    names = await app.roles.names_of_many(session, [u.id for u in rows])
    return UserPage(items=[user_read(u, names[u.id]) for u in rows], next_cursor=next_cursor)


def _query_error(exc: QueryError, q: str | None) -> BadRequest:
    return BadRequest(
        f"{exc.message} (at position {exc.position})",
        code="invalid_query",
        position=exc.position,
        query=q,
    )


def _parse_query(q: str | None) -> Node | None:
    try:
        return parse(q or "")
    except QueryError as exc:
        raise _query_error(exc, q) from exc


def _compile_query(tree: Node | None, q: str | None, dialect: str) -> Any:
    try:
        return None if tree is None else compile_user_filter(tree, dialect)
    except QueryError as exc:
        raise _query_error(exc, q) from exc


@router.get("/{user_id}", response_model=UserRead)
async def read_user(
    user_id: uuid.UUID, principal: CurrentPrincipal, app: ContainerDep, session: DbSession
):
    _acting_on(principal, user_id, Permission.USERS_READ)
    include_deleted = principal.has(Permission.USERS_READ)
    user = await app.users.get(session, user_id, include_deleted=include_deleted)
    return await _read(app, session, user)


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(
    user_id: uuid.UUID,
    body: UserAdminUpdate,
    principal: CurrentPrincipal,
    app: ContainerDep,
    session: DbSession,
):
    """Owners may change their names, email and user_metadata; `app_metadata` and
    `email_verified` need `users:write`."""
    _acting_on(principal, user_id, Permission.USERS_WRITE)
    changes = body.model_dump(exclude_unset=True)
    admin_only = {"app_metadata", "email_verified"} & changes.keys()
    if admin_only and not principal.has(Permission.USERS_WRITE):
        raise Forbidden(f"changing {', '.join(sorted(admin_only))} needs 'users:write'")
    user = await _changeable(app, session, principal, user_id, include_deleted=False)
    await app.users.update(session, user, changes, principal.actor)
    return await _read(app, session, user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    user_id: uuid.UUID, principal: CurrentPrincipal, app: ContainerDep, session: DbSession
):
    _acting_on(principal, user_id, Permission.USERS_DELETE)
    user = await _changeable(app, session, principal, user_id, include_deleted=False)
    await app.users.soft_delete(session, user, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Admin = Annotated[Principal, Depends(require(Permission.USERS_WRITE))]


@router.post("/{user_id}/restore", response_model=UserRead)
async def restore_user(user_id: uuid.UUID, principal: Admin, app: ContainerDep, session: DbSession):
    user = await _changeable(app, session, principal, user_id, include_deleted=True)
    await app.users.restore(session, user, principal.actor)
    return await _read(app, session, user)


@router.post("/{user_id}/block", response_model=UserRead)
async def block_user(user_id: uuid.UUID, principal: Admin, app: ContainerDep, session: DbSession):
    user = await _changeable(app, session, principal, user_id, include_deleted=False)
    await app.users.block(session, user, principal.actor)
    return await _read(app, session, user)


@router.post("/{user_id}/unblock", response_model=UserRead)
async def unblock_user(user_id: uuid.UUID, principal: Admin, app: ContainerDep, session: DbSession):
    user = await _changeable(app, session, principal, user_id, include_deleted=False)
    await app.users.unblock(session, user, principal.actor)
    return await _read(app, session, user)


class AdminLogoutAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_api_keys: bool = Field(
        default=False, description="Also revoke every API key of the account."
    )


class LoggedOut(BaseModel):
    sessions_revoked: int
    api_keys_revoked: int


@router.post("/{user_id}/logout-all", response_model=LoggedOut)
async def logout_user_everywhere(
    user_id: uuid.UUID,
    principal: Admin,
    app: ContainerDep,
    session: DbSession,
    body: AdminLogoutAll | None = None,
):
    """End every session of the account (and, asked, its API keys): every access token
    already issued fails at once. Another admin's account needs a credential acting as admin."""
    user = await _changeable(app, session, principal, user_id, include_deleted=False)
    sessions, keys = await app.logouts.logout_all(
        session,
        user.id,
        include_api_keys=bool(body and body.include_api_keys),
        actor=principal.actor,
    )
    return LoggedOut(sessions_revoked=sessions, api_keys_revoked=keys)


@router.post("/{user_id}/erase", status_code=status.HTTP_204_NO_CONTENT)
async def erase_user(
    user_id: uuid.UUID,
    app: ContainerDep,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.USERS_DELETE))],
):
    """Hard delete (right to erasure): the account and its credentials are removed for good and
    the username becomes free. The audit trail keeps only the id."""
    user = await _changeable(app, session, principal, user_id, include_deleted=True)
    await app.users.erase(session, user, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{user_id}/sessions", response_model=list[SessionRead])
async def user_sessions(
    user_id: uuid.UUID, principal: CurrentPrincipal, app: ContainerDep, session: DbSession
):
    _acting_on(principal, user_id, Permission.USERS_READ)
    await app.users.get(session, user_id, include_deleted=True)
    return await _sessions(app, session, user_id, principal.session_id)


RoleAdmin = Annotated[Principal, Depends(require(Permission.ROLES_MANAGE))]


@router.post("/{user_id}/roles", response_model=UserRead)
async def assign_role(
    user_id: uuid.UUID,
    body: RoleAssignment,
    principal: RoleAdmin,
    app: ContainerDep,
    session: DbSession,
):
    user = await app.users.get(session, user_id, include_deleted=False)
    role = await app.roles.by_name(session, body.role)
    await app.roles.assign(
        session,
        user,
        role,
        presenter=principal,
        actor=principal.actor,
    )
    return await _read(app, session, user)


@router.delete("/{user_id}/roles/{role_name}", response_model=UserRead)
async def remove_role(
    user_id: uuid.UUID, role_name: str, principal: RoleAdmin, app: ContainerDep, session: DbSession
):
    user = await app.users.get(session, user_id, include_deleted=True)
    role = await app.roles.by_name(session, role_name)
    await app.roles.unassign(
        session,
        user,
        role,
        presenter=principal,
        actor=principal.actor,
    )
    return await _read(app, session, user)
