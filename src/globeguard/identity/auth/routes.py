"""Sign-up, sign-in, OAuth2 token endpoint, logout, introspection, discovery documents."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, Request, status
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from globeguard.identity.auth.discovery import server_metadata
from globeguard.identity.auth.oauth_errors import OAuthRoute
from globeguard.identity.auth.service import SignedIn
from globeguard.identity.auth.tokens_service import IssuedTokens, OAuthError
from globeguard.identity.dependencies import (
    ClientCtx,
    ContainerDep,
    CurrentUser,
    DbSession,
)
from globeguard.identity.permissions import Permission
from globeguard.identity.tokens import InvalidToken
from globeguard.identity.users.schemas import UserCreate, UserRead
from globeguard.identity.users.views import user_read
from globeguard.kit.errors import AppError, BadRequest

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
# Auth0's grant for completing a password grant held back for a second factor.
MFA_OTP_GRANT = "http://auth0.com/oauth/grant-type/mfa-otp"
# The token and introspection endpoints answer errors the OAuth way (RFC 6749 §5.2).
oauth = APIRouter(route_class=OAuthRoute)  # included in `router`, under its prefix
well_known = APIRouter(tags=["discovery"])


class SigninRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        min_length=1,
        max_length=320,
        validation_alias=AliasChoices("username", "user_name", "email"),
        description="Username or email address.",
    )
    password: str = Field(min_length=1, max_length=1024)
    scope: str | None = Field(default=None, max_length=2048)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    scope: str
    refresh_token: str | None = None


class SessionResponse(TokenResponse):
    user: UserRead
    user_id: str = Field(description="Same as user.id.")
    username: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str | None = Field(default=None, max_length=256)


class LogoutAllRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_api_keys: bool = Field(
        default=False, description="Also revoke every API key of the account."
    )


class LogoutResponse(BaseModel):
    message: str
    sessions_revoked: int
    api_keys_revoked: int = 0


def token_body(tokens: IssuedTokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "expires_in": tokens.expires_in,
        "scope": tokens.scope,
        "refresh_token": tokens.refresh_token,
    }


def session_body(signed: SignedIn) -> SessionResponse:
    return SessionResponse(
        **token_body(signed.tokens),
        user=user_read(signed.user, signed.roles),
        user_id=str(signed.user.id),
        username=signed.user.username,
    )


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=SessionResponse)
async def signup(body: UserCreate, app: ContainerDep, session: DbSession, ctx: ClientCtx):
    signed = await app.auth.signup(session, body.model_dump(exclude_unset=False), ctx)
    return session_body(signed)


@router.post(
    "/signin",
    response_model=SessionResponse,
    responses={
        401: {
            "description": "`invalid_credentials`; or `mfa_required` (the risk policy asks a "
            "second factor): `mfa_token`, `mfa_methods` and `expires_in`, to complete at "
            "`POST /api/v1/auth/mfa/verify`."
        },
        403: {
            "description": "`account_blocked`, `password_reset_required`, or refused by the "
            "risk policy: `impossible_travel`, `suspicious_travel`, `new_country`."
        },
    },
)
async def signin(body: SigninRequest, app: ContainerDep, session: DbSession, ctx: ClientCtx):
    signed = await app.auth.signin(session, body.username, body.password, body.scope, ctx)
    return session_body(signed)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: the client id and secret are form-urlencoded before they are joined
    for Basic, so `ggc_x` may arrive as `ggc%5Fx`. Ours (base32 ids, url-safe base64 secrets)
    hold no `%` or `+`, so decoding leaves a raw one as it is and both forms work."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from exc
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


@oauth.post("/token", response_model=TokenResponse, response_model_exclude_none=True)
async def token(
    request: Request,
    app: ContainerDep,
    session: DbSession,
    ctx: ClientCtx,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    mfa_token: Annotated[str | None, Form(max_length=256)] = None,
    otp: Annotated[str | None, Form(max_length=64)] = None,
):
    """OAuth 2.0 token endpoint (form-encoded): `password`, `refresh_token` and
    `client_credentials` grants. Client credentials go in HTTP Basic or the form. A password
    grant the risk policy holds back answers 401 `mfa_required` with an `mfa_token`; complete
    it at `/api/v1/auth/mfa/verify`, or here with Auth0's grant
    `http://auth0.com/oauth/grant-type/mfa-otp` (`mfa_token` and `otp`)."""
    if grant_type == MFA_OTP_GRANT:
        if not mfa_token or not otp:
            raise OAuthError("invalid_request", "mfa_token and otp are required")
        issued = await app.auth.mfa_otp_grant(session, mfa_token, otp, ctx)
    elif grant_type == "password":
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required")
        issued = await app.auth.password_grant(session, username, password, scope, ctx)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required")
        issued = await app.auth.refresh_grant(session, refresh_token, ctx)
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        cid, secret = basic if basic else (client_id, client_secret)
        if not cid or not secret:
            raise OAuthError("invalid_client", "client authentication is required", status=401)
        issued = await app.auth.client_credentials(cid, secret, scope)
    else:
        raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")
    return token_body(issued)


@router.post("/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, app: ContainerDep, session: DbSession, ctx: ClientCtx):
    """Trade a refresh token for a new pair. The presented token is used up. From a place
    the account is not known at, the risk policy may first ask a second factor (401
    `mfa_required`; the token is then used up by the step-up)."""
    return token_body(await app.auth.refresh(session, body.refresh_token, ctx))


@router.post("/logout", response_model=LogoutResponse)
async def logout(
    principal: CurrentUser,
    app: ContainerDep,
    session: DbSession,
    body: LogoutRequest | None = None,
):
    """End this session: its refresh tokens and its access tokens stop working."""
    if body and body.refresh_token:
        ended = await app.logouts.by_refresh(session, body.refresh_token)
    elif principal.session_id is not None and principal.user_id is not None:
        ended = await app.logouts.logout(session, principal.user_id, principal.session_id)
    else:
        raise BadRequest(
            "an API key has no session; revoke the key or use logout-all", code="no_session"
        )
    count = 1 if ended else 0
    return LogoutResponse(message=f"logged out, {count} session ended", sessions_revoked=count)


@router.post("/logout-all", response_model=LogoutResponse)
async def logout_all(
    principal: CurrentUser,
    app: ContainerDep,
    session: DbSession,
    body: LogoutAllRequest | None = None,
):
    """End every session of the account; every access token already issued fails at once."""
    assert principal.user_id is not None
    include_keys = bool(body and body.include_api_keys)
    sessions, keys = await app.logouts.logout_all(
        session, principal.user_id, include_api_keys=include_keys, actor=principal.actor
    )
    return LogoutResponse(
        message=f"logged out, {sessions} sessions ended",
        sessions_revoked=sessions,
        api_keys_revoked=keys,
    )


@oauth.post("/introspect")
async def introspect(
    request: Request,
    app: ContainerDep,
    token: Annotated[str, Form()],
    token_type_hint: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """RFC 7662. The caller authenticates as a machine client (Basic or form) or with a
    credential holding `users:read`. Anything not valid right now (including refresh tokens,
    which only their holder may present) is `{"active": false}`."""
    await _authorize_introspection(request, app, client_id, client_secret)
    try:
        principal = await app.authenticator.from_bearer(token)
    except (AppError, InvalidToken):
        return {"active": False}
    claims = app.ring.verify(token).raw
    return {
        "active": True,
        "token_type": "access_token",
        "scope": claims.get("scope", ""),
        "sub": principal.subject,
        "client_id": claims.get("client_id"),
        "username": claims.get("preferred_username"),
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "jti": claims["jti"],
        "sid": claims.get("sid"),
    }


async def _authorize_introspection(
    request: Request,
    app: ContainerDep,
    client_id: str | None,
    client_secret: str | None,
) -> None:
    basic = _basic_credentials(request)
    cid, secret = basic if basic else (client_id, client_secret)
    if cid and secret:
        await app.auth.authenticate_client(cid, secret)
        return
    token = request.headers.get("authorization", "")
    if token.lower().startswith("bearer "):
        caller = await app.authenticator.from_bearer(token[7:].strip())
    elif api_key := request.headers.get("x-api-key"):
        caller = await app.authenticator.from_api_key(api_key)
    else:
        raise OAuthError("invalid_client", "authenticate to introspect tokens", status=401)
    caller.require(Permission.USERS_READ)


@well_known.get("/.well-known/jwks.json")
async def jwks(app: ContainerDep) -> dict[str, Any]:
    return app.ring.jwks()


@well_known.get("/.well-known/openid-configuration")
async def openid_configuration(app: ContainerDep) -> dict[str, Any]:
    """OpenID Connect discovery: the RFC 8414 metadata plus the OIDC-only fields."""
    return server_metadata(app.settings.auth.issuer, openid=True)


@well_known.get("/.well-known/oauth-authorization-server")
async def oauth_authorization_server(app: ContainerDep) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return server_metadata(app.settings.auth.issuer, openid=False)


# Included once the OAuth endpoints above are declared.
router.include_router(oauth)
