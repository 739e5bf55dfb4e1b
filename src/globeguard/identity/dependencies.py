"""FastAPI dependencies: the request's transaction, the caller, and permission checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import finish
from globeguard.identity.auth.tokens_service import ClientContext
from globeguard.identity.principal import Principal
from globeguard.kit.errors import AppError, Unauthorized
from globeguard.kit.net import client_ip
from globeguard.wiring import Container

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    scheme_name="Bearer",
    description="Sign in with username (or email) and password; Swagger stores the token.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-KEY",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from POST /api/v1/api-keys (header name is case-insensitive).",
)


async def container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(container)]


async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits after the handler returns and before the response is sent (function scope)."""
    async with request.app.state.container.db.sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            if exc.keep_changes:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await finish(session)


DbSession = Annotated[AsyncSession, Depends(_transaction, scope="function")]


async def client_context(request: Request, app: ContainerDep) -> ClientContext:
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), app.settings.http.trusted_networks)
    return ClientContext(ip=ip, user_agent=request.headers.get("user-agent"))


ClientCtx = Annotated[ClientContext, Depends(client_context)]


async def _optional_principal(
    app: ContainerDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal | None:
    if token:
        return await app.authenticator.from_bearer(token)
    if api_key:
        return await app.authenticator.from_api_key(api_key)
    return None


async def _principal(
    principal: Annotated[Principal | None, Depends(_optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized(
            "send an access token (Authorization: Bearer) or an API key (X-API-KEY)",
            code="not_authenticated",
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(_optional_principal)]


def require(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def _check(principal: CurrentPrincipal) -> Principal:
        principal.require(scope)
        return principal

    return _check


async def user_principal(principal: CurrentPrincipal) -> Principal:
    """Endpoints about 'me' need a user behind the credential, not a machine client."""
    if principal.user_id is None:
        raise Unauthorized("this endpoint needs a user's credential", code="user_required")
    principal.require("profile")
    return principal


CurrentUser = Annotated[Principal, Depends(user_principal)]
