"""`POST /api/v1/auth/mfa/verify`: the second step of a sign-in the risk policy held back.

No bearer: the `mfa_token` from the 401 `mfa_required` is the credential, with the code. The
answer is what the endpoint that asked would have answered: `/signin`'s session body, or the
token body for the `password` grant and for a refresh."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from globeguard.account.stepup.service import Kind
from globeguard.identity.auth.routes import SessionResponse, TokenResponse, session_body, token_body
from globeguard.identity.dependencies import ClientCtx, ContainerDep, DbSession

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class MfaVerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mfa_token: str = Field(
        min_length=1, max_length=256, description="From the 401 `mfa_required` answer."
    )
    code: str = Field(
        min_length=1,
        max_length=64,
        description="The authenticator's current code, a recovery code, or the emailed code.",
    )


@router.post(
    "/mfa/verify",
    response_model=SessionResponse | TokenResponse,
    response_model_exclude_none=True,
    responses={
        400: {"description": "`invalid_token`: unknown, expired, used or another address's."},
        401: {"description": "`invalid_code`: the code is wrong (the token allows a few)."},
    },
)
async def verify(
    body: MfaVerifyRequest, app: ContainerDep, session: DbSession, ctx: ClientCtx
) -> Any:
    """Complete a sign-in held back for a second factor. The token works once, from the
    address that signed in, until it expires; a right code also makes the sign-in's place
    one the account is known at."""
    done = await app.auth.complete_stepup(session, body.mfa_token, body.code, ctx)
    if done.signed is not None and done.kind is Kind.SIGNIN:
        return session_body(done.signed)
    return token_body(done.tokens)
