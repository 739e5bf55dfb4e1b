"""The sign-in side of step-up: completing what a passed step-up held back (a sign-in, a
password grant, a refresh from a new place) and holding a refresh back in the first place.
Mixed into AuthService, whose recording, sessions and tokens it uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.stepup.policy import Action, Plan, decide, refusal_code
from globeguard.account.stepup.service import (
    MFA_REQUIRED,
    HeldSignin,
    InvalidCode,
    InvalidStepUpToken,
    Kind,
    MfaRequired,
    Passed,
    StepUpService,
)
from globeguard.identity.auth.repository import Credentials, SigninRepository
from globeguard.identity.auth.signin_events import record_signin_succeeded
from globeguard.identity.auth.throttle import SigninThrottle
from globeguard.identity.auth.tokens_service import (
    ClientContext,
    IssuedTokens,
    OAuthError,
    TokenIssuer,
)
from globeguard.identity.grants import Grants, grants_from
from globeguard.identity.models import User
from globeguard.identity.revocation import announce
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import same_digest, sha256_hex
from globeguard.kit.errors import Forbidden
from globeguard.settings import RiskSettings
from globeguard.travel.announce import FLAGGED as FLAGGED_VERDICTS
from globeguard.travel.announce import announce_review
from globeguard.travel.detect import Grade
from globeguard.travel.models import LoginEvent
from globeguard.travel.service import LoginEventService, Recorded, Refusal

if TYPE_CHECKING:
    from globeguard.identity.auth.service import SignedIn

# A login of the account was reviewed `compromised`: its password no longer signs in.
PASSWORD_RESET = "password_reset_required"  # noqa: S105 - a problem code
# What a sign-in the risk policy denies is told, by the risk that denied it.
DENIED = {
    "impossible_travel": "this sign-in implies impossible travel since the last one",
    "suspicious_travel": "this sign-in implies unlikely travel since the last one",
    "new_country": "this sign-in comes from a country this account has not signed in from",
}


@dataclass(frozen=True, slots=True)
class SteppedUp:
    """What a passed step-up completed, and which endpoint it answers as: a sign-in (its
    session, `signed`) or a refresh (the rotated pair only)."""

    kind: Kind
    tokens: IssuedTokens
    signed: SignedIn | None = None


class StepUpSignins:
    """Step-up's half of AuthService (see there for the attributes it reads)."""

    stepup: StepUpService | None
    throttle: SigninThrottle
    issuer: TokenIssuer
    logins: LoginEventService
    risk: RiskSettings

    if TYPE_CHECKING:

        async def _session_for(
            self,
            session: AsyncSession,
            user: User,
            scope: str | None,
            ctx: ClientContext,
            grants: Grants | None = None,
        ) -> SignedIn: ...

        async def _login_event(
            self,
            session: AsyncSession,
            subject: str,
            user_id: uuid.UUID | None,
            ctx: ClientContext,
            failure: str | None,
            refuse: Refusal | None = None,
        ) -> Recorded: ...

    def _risk_judge(
        self,
        session: AsyncSession,
        user_id: uuid.UUID | None,
        email_verified: bool,
        plans: list[Plan],
    ) -> Refusal:
        """What the risk policy makes of the journey once it is judged: the reason to store
        the sign-in as refused (denied, or held for a second factor), or None. The plan is
        left in `plans` for the caller."""

        async def judge(grade: Grade, new_country: bool) -> str | None:
            action = decide(grade, new_country, self.risk)
            if self.stepup is None:  # no second factor can be asked: the fallback decides
                action = Action(self.risk.mfa_fallback) if action is Action.MFA else action
                found = Plan(action)
            else:
                assert user_id is not None
                found = await self.stepup.plan(session, action, user_id, email_verified)
            plans.append(found)
            if found.action is Action.DENY:
                return refusal_code(grade, new_country, self.risk)
            return MFA_REQUIRED if found.action is Action.MFA else None

        return judge

    async def complete_stepup(
        self, session: AsyncSession, mfa_token: str, code: str, ctx: ClientContext
    ) -> SteppedUp:
        """`POST /api/v1/auth/mfa/verify`: check the code, use the token up, and complete the
        sign-in it held back as it would have completed: counted, its login a success the
        user proved (its place known from now on), a session."""
        assert self.stepup is not None
        passed = await self.stepup.verify(session, mfa_token, code, ctx.ip)
        kind = Kind(passed.bound.get("kind", Kind.SIGNIN))
        connection = await session.connection()
        found = await SigninRepository(connection).credentials_of(passed.user_id)
        self._still_signs_in(found, passed)
        assert found is not None
        now = utcnow()
        if kind is Kind.REFRESH:
            return await self._refresh_stepped_up(session, passed, now)
        user = await SigninRepository(connection).record_signin(
            found.user_id, found.password_hash, now, ctx.ip, None
        )
        if user is None:  # changed under us since the check: only the token is used up
            raise InvalidStepUpToken()
        event = await self._proven(session, passed, now)
        await self.stepup.succeeded(session, passed)
        await self.throttle.signed_in_after_step_up(user.id, ctx.ip)
        await announce(session, str(user.id), broadcast=False)
        await record_signin_succeeded(
            session,
            user,
            ctx,
            login_event=passed.bound.get("login_event"),
            travel=(event.verdict if event is not None else None) or Grade.NONE.value,
            mfa=passed.method,
        )
        scope = passed.bound.get("scope")
        signed = await self._session_for(session, user, scope, ctx, grants_from(found.roles))
        return SteppedUp(kind, signed.tokens, signed)

    async def _refresh_stepped_up(
        self, session: AsyncSession, passed: Passed, now: datetime
    ) -> SteppedUp:
        """A refresh held back from a new place: the token it presented rotates now (with
        every check a refresh has), and its place is proven."""
        assert self.stepup is not None
        tokens = await self.issuer.rotate_digest(session, str(passed.bound.get("refresh")))
        await self._proven(session, passed, now)
        await self.stepup.succeeded(session, passed)
        return SteppedUp(Kind.REFRESH, tokens)

    async def _proven(
        self, session: AsyncSession, passed: Passed, now: datetime
    ) -> LoginEvent | None:
        """The held-back login becomes the success the user proved (its place known from now
        on); a flagged one is cleared, as an admin's `safe` review clears it. None when the
        login is gone (nothing to prove)."""
        login_uuid = str(passed.bound.get("login_event"))
        event = await self.logins.confirmed(session, login_uuid, now)
        if event is not None and event.verdict in FLAGGED_VERDICTS:
            await announce_review(session, event, "cleared", actor=f"user:{passed.user_id}")
        return event

    async def refresh(
        self, session: AsyncSession, presented: str, ctx: ClientContext
    ) -> IssuedTokens:
        """Rotate a refresh token, unless it comes from a place the account is not known at
        and the risk policy asks a second factor of that journey: then 401 `mfa_required`,
        the token left unused until the step-up rotates it."""
        live = await self.issuer.live_refresh(session, presented)
        if live is not None and self.stepup is not None:
            await self._refresh_risk(session, live.user_id, presented, ctx)
        return await self.issuer.rotate(session, presented)

    async def refresh_grant(
        self, session: AsyncSession, presented: str, ctx: ClientContext
    ) -> IssuedTokens:
        """`refresh` at the token endpoint: a step-up is the OAuth error `mfa_required`."""
        try:
            return await self.refresh(session, presented, ctx)
        except MfaRequired as exc:
            raise mfa_required_grant(exc) from exc

    async def _refresh_risk(
        self, session: AsyncSession, user_id: uuid.UUID, presented: str, ctx: ClientContext
    ) -> None:
        """Raise MfaRequired when this refresh's journey needs a second factor the account
        has. Only `mfa` stops a refresh: the other actions (and the fallback of an account
        with no factor) let it through as before."""
        assert self.stepup is not None
        judged = await self.logins.judge_now(session, str(user_id), ctx.ip, utcnow())
        if judged is None or decide(*judged, self.risk) is not Action.MFA:
            return
        found = await SigninRepository(await session.connection()).credentials_of(user_id)
        if found is None or found.status != "active":
            return  # the rotation refuses it
        plan = await self.stepup.plan(session, Action.MFA, user_id, found.email_verified)
        if plan.method is None:
            return
        login = await self._login_event(session, str(user_id), user_id, ctx, MFA_REQUIRED)
        held = HeldSignin(
            user_id,
            login.event,
            ctx.ip,
            None,
            Kind.REFRESH,
            sha256_hex(found.password_hash or ""),
            found.email,
            sha256_hex(presented.strip()),
        )
        raise await self.stepup.challenge(session, held, plan.method)

    async def mfa_otp_grant(
        self, session: AsyncSession, mfa_token: str, otp: str, ctx: ClientContext
    ) -> IssuedTokens:
        """The step-up at the token endpoint (Auth0's `mfa-otp` grant), with OAuth errors."""
        try:
            return (await self.complete_stepup(session, mfa_token, otp, ctx)).tokens
        except (InvalidStepUpToken, InvalidCode, Forbidden) as exc:
            raise OAuthError("invalid_grant", exc.detail, keep_changes=True) from exc

    @staticmethod
    def _still_signs_in(found: Credentials | None, passed: Passed) -> None:
        """The account as it is now must still sign in with the password the step-up
        followed: blocked or reset-required say so; erased or re-keyed end the step-up."""
        if found is None or found.status == "deleted":
            raise InvalidStepUpToken()
        if found.password_hash is None or not same_digest(
            found.password_hash, str(passed.bound.get("password", ""))
        ):
            raise InvalidStepUpToken()
        if found.status == "blocked":
            raise Forbidden("this account is blocked", code="account_blocked", keep_changes=True)
        if found.password_reset_required:
            raise Forbidden(
                "this password must be changed before it signs in again; ask an administrator",
                code=PASSWORD_RESET,
                keep_changes=True,
            )


def mfa_required_grant(exc: MfaRequired) -> OAuthError:
    """The password grant's answer when a second factor is needed: the OAuth JSON error
    `mfa_required` with the same `mfa_token` (the shape Auth0 answers)."""
    return OAuthError(
        "mfa_required",
        exc.detail,
        status=401,
        keep_changes=True,
        mfa_token=exc.mfa_token,
        mfa_methods=exc.mfa_methods,
        expires_in=exc.expires_in,
    )
