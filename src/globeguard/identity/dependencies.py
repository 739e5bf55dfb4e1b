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


# One flat dependency per kind of caller: FastAPI's dependency solving costs more than the
# cached credential check itself, and /users/me is the hottest authenticated route.
BearerToken = Annotated[str | None, Depends(oauth2_scheme)]
ApiKeyHeader = Annotated[str | None, Depends(api_key_scheme)]
NOT_AUTHENTICATED = "send an access token (Authorization: Bearer) or an API key (X-API-KEY)"


async def _resolve(request: Request, token: str | None, api_key: str | None) -> Principal | None:
    authenticator = request.app.state.container.authenticator
    if token:
        return await authenticator.from_bearer(token)  # type: ignore[no-any-return]
    if api_key:
        return await authenticator.from_api_key(api_key)  # type: ignore[no-any-return]
    return None


async def optional_principal(
    request: Request, token: BearerToken, api_key: ApiKeyHeader
) -> Principal | None:
    return await _resolve(request, token, api_key)


async def current_principal(
    request: Request, token: BearerToken, api_key: ApiKeyHeader
) -> Principal:
    principal = await _resolve(request, token, api_key)
    if principal is None:
        raise Unauthorized(NOT_AUTHENTICATED, code="not_authenticated")
    return principal


async def current_user(request: Request, token: BearerToken, api_key: ApiKeyHeader) -> Principal:
    """Endpoints about 'me' need a user behind the credential, not a machine client."""
    principal = await current_principal(request, token, api_key)
    if principal.user_id is None:
        raise Unauthorized("this endpoint needs a user's credential", code="user_required")
    principal.require("profile")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require(*scopes: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """The caller, holding every one of `scopes` (403 naming the first one missing)."""

    async def _check(principal: CurrentPrincipal) -> Principal:
        for scope in scopes:
            principal.require(scope)
        return principal

    return _check


CurrentUser = Annotated[Principal, Depends(current_user)]
