"""/api/v1/mfa: the signed-in user's own second factor.

Only a user's session may change it: a Bearer token from a sign-in that carries `profile`.
API keys (whatever their scopes) and machine clients are refused: they never pass a second
factor themselves, and a leaked key must not be able to bind an attacker's authenticator or
switch the owner's off. Reading the status needs `profile`, from any user credential.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from globeguard.account.mfa.schemas import (
    ConfirmBody,
    ConfirmedRead,
    EnrolmentRead,
    MfaRead,
    ProofBody,
    RecoveryCodesRead,
    TotpRead,
)
from globeguard.account.mfa.service import Proof
from globeguard.identity.dependencies import ClientCtx, ContainerDep, CurrentUser, DbSession
from globeguard.identity.models import User
from globeguard.identity.principal import Principal
from globeguard.kit.errors import Forbidden
from globeguard.wiring import Container

router = APIRouter(prefix="/api/v1/mfa", tags=["mfa"])


def _session_only(principal: Principal) -> None:
    if principal.session_id is None or principal.api_key_id is not None:
        raise Forbidden(
            "second factors are managed from a signed-in session, not with an API key",
            code="session_required",
        )


async def _me(app: Container, principal: Principal) -> User:
    """The account, read outside the request's transaction: a password check hashes next,
    and the hash must not hold the (SQLite) writer."""
    _session_only(principal)
    assert principal.user_id is not None
    async with app.db.read() as reader:
        return await app.users.get(reader, principal.user_id, include_deleted=False)


@router.get("", response_model=MfaRead)
async def read_mfa(principal: CurrentUser, app: ContainerDep, session: DbSession) -> MfaRead:
    """Whether an authenticator is active, and how many recovery codes are left."""
    assert principal.user_id is not None
    found = await app.mfa.status(session, principal.user_id)
    totp = TotpRead(enrolled=found.enrolled, pending=found.pending, confirmed_at=found.confirmed_at)
    return MfaRead(totp=totp, recovery_codes_left=found.recovery_codes_left)


@router.post("/totp", response_model=EnrolmentRead, status_code=status.HTTP_201_CREATED)
async def start_totp(principal: CurrentUser, app: ContainerDep, session: DbSession):
    """Start enrolling an authenticator app: scan `qr_svg` (or type `secret`), then confirm
    with a code. Starting again before confirming replaces the secret; with an active
    authenticator this is 409 `mfa_already_enrolled` (remove it first)."""
    enrolment = await app.mfa.start_enrolment(session, await _me(app, principal))
    return EnrolmentRead(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post("/totp/confirm", response_model=ConfirmedRead)
async def confirm_totp(
    body: ConfirmBody, principal: CurrentUser, app: ContainerDep, session: DbSession, ctx: ClientCtx
):
    """Activate the authenticator with the code it shows. The answer carries ten recovery
    codes, this once. A wrong code is 400 `invalid_mfa_code` and counts towards the lockout."""
    user = await _me(app, principal)
    when, codes = await app.mfa.confirm(session, user, body.code, actor=principal.actor, ip=ctx.ip)
    return ConfirmedRead(confirmed_at=when, recovery_codes=codes)


@router.delete("/totp", status_code=status.HTTP_204_NO_CONTENT)
async def remove_totp(
    body: ProofBody, principal: CurrentUser, app: ContainerDep, session: DbSession, ctx: ClientCtx
):
    """Remove the authenticator and its recovery codes. Needs `code` (from the app, or a
    recovery code) or `password`; wrong ones count towards the lockout."""
    user = await _me(app, principal)
    proof = Proof(code=body.code, password=body.password)
    await app.mfa.remove(session, user, proof, actor=principal.actor, ip=ctx.ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/recovery-codes", response_model=RecoveryCodesRead)
async def replace_recovery_codes(
    body: ProofBody, principal: CurrentUser, app: ContainerDep, session: DbSession, ctx: ClientCtx
):
    """Ten new recovery codes, shown this once; the earlier ones stop working. Needs `code`
    or `password`, like removing the authenticator."""
    user = await _me(app, principal)
    proof = Proof(code=body.code, password=body.password)
    codes = await app.mfa.replace_recovery_codes(
        session, user, proof, actor=principal.actor, ip=ctx.ip
    )
    return RecoveryCodesRead(recovery_codes=codes)
