"""The email flows' endpoints: verify an address, reset a forgotten password, answer a
"was this you?" email. Every single-use token refused alike: 400 `invalid_token`."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, BackgroundTasks, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from globeguard.account.feedback import Answer
from globeguard.identity.dependencies import ClientCtx, ContainerDep, CurrentUser, DbSession
from globeguard.identity.users.schemas import Password
from globeguard.wiring import Container

log = logging.getLogger("globeguard.account")

router = APIRouter(prefix="/api/v1/auth", tags=["account emails"])

# Our tokens are a 4-character prefix and 43 characters of base64url; room to spare.
Token = Field(min_length=1, max_length=128, description="The `token` of the emailed link.")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenBody(Body):
    token: str = Token


class VerificationSent(BaseModel):
    email: str
    expires_in: int = Field(description="Seconds the link works for.")


class EmailVerified(BaseModel):
    user_id: uuid.UUID
    email_verified: bool = True


class ForgotBody(Body):
    email: EmailStr | None = None
    username: str | None = Field(default=None, min_length=1, max_length=320)

    @model_validator(mode="after")
    def _one_of(self) -> ForgotBody:
        if (self.email is None) == (self.username is None):
            raise ValueError("give exactly one of email or username")
        return self


class ForgotAccepted(BaseModel):
    message: str = (
        "if an account matches, a link to reset its password has been sent to its email address"
    )


class ResetBody(TokenBody):
    password: str = Password


class FeedbackBody(TokenBody):
    answer: Answer


class FeedbackAnswered(BaseModel):
    answer: Answer
    login_id: int
    review: str | None
    # Sessions the "no" ended (null for "yes").
    sessions_revoked: int | None
    # After "no": a password reset link was mailed, so the owner can sign in again.
    password_reset_sent: bool


@router.post(
    "/verify-email/send", status_code=status.HTTP_202_ACCEPTED, response_model=VerificationSent
)
async def send_verification(
    principal: CurrentUser, app: ContainerDep, session: DbSession
) -> VerificationSent:
    """Email the signed-in user a link that verifies their current address. 409 `no_email`
    or `email_already_verified`; 429 past the account's emails this hour."""
    assert principal.user_id is not None
    email = await app.email_flows.verification.send(session, principal.user_id)
    ttl = app.settings.account.verify_email_ttl
    return VerificationSent(email=email, expires_in=int(ttl.total_seconds()))


@router.post("/verify-email", response_model=EmailVerified)
async def verify_email(body: TokenBody, app: ContainerDep, session: DbSession) -> EmailVerified:
    """The token of a verification link (no credential needed: the token is the proof).
    400 `invalid_token` when it is unknown, expired, used, or the address changed since."""
    done = await app.email_flows.verification.verify(session, body.token)
    return EmailVerified(user_id=done.user.id)


@router.post(
    "/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=ForgotAccepted
)
async def forgot_password(
    body: ForgotBody, app: ContainerDep, ctx: ClientCtx, background: BackgroundTasks
) -> ForgotAccepted:
    """Email a password reset link (valid 30 minutes; a newer one replaces it) to the
    account with this email or username. Answered 202 with the same body whether or not
    one exists: the account is looked up after the answer is sent. 429 only when this
    client address asked too often."""
    await app.email_flows.resets.admit(ctx.ip)
    background.add_task(_forgot, app, body.email, body.username)
    return ForgotAccepted()


async def _forgot(app: Container, email: str | None, username: str | None) -> None:
    try:
        async with app.db.transaction() as session:
            await app.email_flows.resets.forgot(session, email=email, username=username)
    except Exception:
        log.exception("a forgot-password request could not be handled")


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(body: ResetBody, app: ContainerDep, session: DbSession) -> Response:
    """Set a new password with the token of a reset link. Every session, refresh token and
    access token of the account ends; a required reset is lifted; the address counts as
    verified. 400 `invalid_token`; 422 `weak_password` (the link still works); 403
    `account_blocked`."""
    resets = app.email_flows.resets
    # Scored and hashed before the write transaction, which must not wait on argon2.
    async with app.db.read() as reader:
        prepared = await resets.prepare(reader, body.token, body.password)
    await resets.reset(session, prepared)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/login-feedback", response_model=FeedbackAnswered)
async def login_feedback(
    body: FeedbackBody, app: ContainerDep, session: DbSession
) -> FeedbackAnswered:
    """Answer a "was this you?" email: `yes` trusts the sign-in's place from now on; `no`
    signs the account out everywhere, requires a new password and mails a reset link. One
    answer per email: 400 `invalid_token` for the second."""
    done = await app.email_flows.feedback.answer(session, body.token, body.answer)
    return FeedbackAnswered(
        answer=done.answer,
        login_id=done.login.id,
        review=done.login.review,
        sessions_revoked=done.sessions_revoked,
        password_reset_sent=done.reset_link_sent,
    )
