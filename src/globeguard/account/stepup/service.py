"""Step-up on risk: asking a risky sign-in for a second factor, and checking the answer.

A sign-in the policy (`policy.py`) sends to `mfa` is stored as a failed login `mfa_required`
(no anchor, no login count, no session) and answered 401 `mfa_required` with an `mfa_token`:
single use, `AccountSettings.mfa_token_ttl` long, bound to that attempt (its login event,
user, scope and which endpoint asked) and to its address. `POST /api/v1/auth/mfa/verify`
presents it with a code; `verify` checks both and uses the token up. The caller (the sign-in
service) then completes the sign-in it held back.

The code is the authenticator's (or a recovery code) when the user has one, else a 6-digit
code emailed to the verified address; only that code's SHA-256 is kept, in the token's row.
A wrong code counts against the token, which dies after `mfa_code_attempts` of them; the
authenticator's codes are also throttled per account by the factor service.

Events: `user.mfa.challenged`, `user.mfa.failed`, `user.mfa.succeeded` (audit and outbox).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.one_time import OneTimeTokens, Purpose
from globeguard.account.stepup.policy import Action, Method, Plan, methods_offered, plan
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.throttle import SigninThrottle
from globeguard.kit.crypto import sha256_hex
from globeguard.kit.errors import BadRequest, Unauthorized
from globeguard.settings import AccountSettings, RiskSettings
from globeguard.travel.models import LoginEvent

# The failure reason a held-back sign-in's login event is stored with.
MFA_REQUIRED = "mfa_required"
CODE_DIGITS = 6
TEMPLATE = "mfa_code"


class Kind(StrEnum):
    """Which endpoint asked: the verify answers as that endpoint would have."""

    SIGNIN = "signin"
    PASSWORD_GRANT = "password_grant"  # noqa: S105 - a grant's name
    REFRESH = "refresh"


class SecondFactors(Protocol):
    async def has_totp(self, session: AsyncSession, user_id: uuid.UUID) -> bool: ...

    async def check(self, session: AsyncSession, user_id: uuid.UUID, code: str) -> str | None: ...


class Mailer(Protocol):
    async def send(
        self, session: AsyncSession, *, to: str, template: str, values: dict[str, Any]
    ) -> Any: ...


class Notices(Protocol):
    async def signin_notice(
        self, session: AsyncSession, user_id: uuid.UUID, login_event: LoginEvent
    ) -> bool: ...


class MfaRequired(Unauthorized):
    code, title = MFA_REQUIRED, "Second factor required"

    def __init__(self, token: str, methods: list[str], expires_in: int) -> None:
        super().__init__(
            "this sign-in needs a second factor: POST /api/v1/auth/mfa/verify with the "
            "mfa_token and a code",
            keep_changes=True,
            mfa_token=token,
            mfa_methods=methods,
            expires_in=expires_in,
        )
        self.mfa_token, self.mfa_methods, self.expires_in = token, methods, expires_in


class InvalidStepUpToken(BadRequest):
    code, title = "invalid_token", "Invalid token"

    def __init__(self) -> None:
        # One answer for unknown, expired, used, another purpose's or another address's.
        super().__init__(
            "this mfa_token is not valid (unknown, expired or used)", keep_changes=True
        )


class InvalidCode(Unauthorized):
    code, title = "invalid_code", "Invalid code"

    def __init__(self, attempts_left: int) -> None:
        super().__init__("the code is not valid", keep_changes=True, attempts_left=attempts_left)


@dataclass(frozen=True, slots=True)
class HeldSignin:
    """The sign-in being held back: what its step-up token is bound to."""

    user_id: uuid.UUID
    login_event: LoginEvent
    ip: str | None
    scope: str | None
    kind: Kind
    # SHA-256 of the password hash verified: a password changed since ends the step-up.
    password_digest: str
    email: str | None = None
    # The refresh token a refresh step-up rotates once passed (its digest only).
    refresh_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Passed:
    user_id: uuid.UUID
    # What the token was bound to (HeldSignin's fields, as stored).
    bound: dict[str, Any]
    # What proved it: "totp", "recovery_code" or "email".
    method: str


class StepUpService:
    def __init__(
        self,
        tokens: OneTimeTokens,
        factors: SecondFactors,
        mail: Mailer,
        notices: Notices,
        risk: RiskSettings,
        account: AccountSettings,
        throttle: SigninThrottle | None = None,
    ) -> None:
        # Emailed codes count towards the account's second-factor lockout, as the
        # authenticator's do (the factor service counts those).
        self.throttle = throttle
        self.tokens = tokens
        self.factors = factors
        self.mail = mail
        self.notices = notices
        self.risk = risk
        self.account = account

    async def plan(
        self, session: AsyncSession, action: Action, user_id: uuid.UUID, email_verified: bool
    ) -> Plan:
        """`action` with the account's factor for `mfa` (read only then: sign-in is hot)."""
        has_totp = action is Action.MFA and await self.factors.has_totp(session, user_id)
        return plan(
            action,
            has_totp=has_totp,
            verified_email=email_verified,
            fallback=self.risk.mfa_fallback,
        )

    async def notify(self, session: AsyncSession, user_id: uuid.UUID, event: LoginEvent) -> None:
        """The "was this you?" email of a sign-in let through under `notify`."""
        await self.notices.signin_notice(session, user_id, event)

    async def challenge(
        self, session: AsyncSession, held: HeldSignin, method: Method
    ) -> MfaRequired:
        """Issue the step-up token (and email the code), record `user.mfa.challenged`; returns
        the 401 to raise (raised with keep_changes: the record of it commits)."""
        bound: dict[str, Any] = {
            "login_event": held.login_event.event_uuid,
            "ip": held.ip,
            "scope": held.scope,
            "kind": str(held.kind),
            "method": str(method),
            "password": held.password_digest,
            "refresh": held.refresh_digest,
        }
        code = None
        if method is Method.EMAIL:
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            bound["code"] = sha256_hex(code)
        ttl = self.account.mfa_token_ttl
        token = await self.tokens.issue(session, Purpose.MFA, held.user_id, ttl, bound)
        if code is not None and held.email:
            await self._email_code(session, held, code)
        await self._record(
            session,
            EventType.MFA_CHALLENGED,
            held.user_id,
            held.login_event.event_uuid,
            method=str(method),
            kind=str(held.kind),
            ip=held.ip,
        )
        return MfaRequired(token, methods_offered(method), int(ttl.total_seconds()))

    async def verify(
        self, session: AsyncSession, mfa_token: str, code: str, ip: str | None
    ) -> Passed:
        """Check the code against the step-up token and use the token up. A wrong code is
        401 `invalid_code` (counted against the token); anything wrong with the token is 400
        `invalid_token`, the same whatever it is."""
        row = await self.tokens.peek(session, Purpose.MFA, mfa_token)
        if row is None or (row.data or {}).get("ip") != ip:
            raise InvalidStepUpToken()
        bound = dict(row.data or {})
        method = await self._check(session, row.user_id, bound, code)
        if method is None:
            raise await self._failed(session, row.id, row.user_id, bound)
        # Single use, atomically: of two verifies with a right code, one gets here second.
        if not await self.tokens.use(session, Purpose.MFA, mfa_token):
            raise InvalidStepUpToken()
        return Passed(row.user_id, bound, method)

    async def succeeded(self, session: AsyncSession, passed: Passed) -> None:
        await self._record(
            session,
            EventType.MFA_SUCCEEDED,
            passed.user_id,
            passed.bound.get("login_event"),
            method=passed.method,
            kind=passed.bound.get("kind"),
            ip=passed.bound.get("ip"),
        )

    async def _check(
        self, session: AsyncSession, user_id: uuid.UUID, bound: dict[str, Any], code: str
    ) -> str | None:
        presented = "".join(code.split())
        if bound.get("method") == Method.EMAIL:
            return await self._check_emailed(user_id, bound.get("code"), presented)
        found = await self.factors.check(session, user_id, presented)
        return {"totp": "totp", "recovery": "recovery_code"}.get(found or "")

    async def _check_emailed(self, user_id: uuid.UUID, expected: Any, presented: str) -> str | None:
        """The emailed code, behind the account's lockout (429 once it is locked)."""
        attempt = None
        if self.throttle is not None:
            key = f"mfa:{user_id}"  # the factor service's key: one lockout per account
            attempt = await self.throttle.admit(key, key)
        ok = isinstance(expected, str) and hmac.compare_digest(sha256_hex(presented), expected)
        if ok and attempt is not None:
            assert self.throttle is not None
            await self.throttle.succeeded(attempt)
        return "email" if ok else None

    async def _failed(
        self, session: AsyncSession, token_id: uuid.UUID, user_id: uuid.UUID, bound: dict[str, Any]
    ) -> InvalidCode:
        """Count a wrong code (the token dies at the limit) and record it; the error to raise
        (with keep_changes, so the count commits)."""
        limit = self.account.mfa_code_attempts
        failures = await self.tokens.count_failure(session, token_id, limit)
        left = max(0, limit - failures)
        await self._record(
            session,
            EventType.MFA_FAILED,
            user_id,
            bound.get("login_event"),
            method=bound.get("method"),
            kind=bound.get("kind"),
            ip=bound.get("ip"),
            attempts_left=left,
        )
        return InvalidCode(left)

    async def _email_code(self, session: AsyncSession, held: HeldSignin, code: str) -> None:
        event = held.login_event
        place = ", ".join(p for p in (event.city_name, event.country_iso) if p) or "unknown"
        minutes = max(1, int(self.account.mfa_token_ttl.total_seconds() // 60))
        assert held.email is not None
        await self.mail.send(
            session,
            to=held.email,
            template=TEMPLATE,
            values={
                "code": code,
                "place": place,
                "ip": held.ip or "unknown",
                "minutes": minutes,
            },
        )

    @staticmethod
    async def _record(
        session: AsyncSession,
        event_type: EventType,
        user_id: uuid.UUID,
        login_event: str | None,
        **payload: Any,
    ) -> None:
        await record(
            session,
            event_type,
            actor=f"user:{user_id}",
            aggregate_type="user",
            aggregate_id=str(user_id),
            user_id=user_id,
            payload={"user_id": str(user_id), "login_event": login_event, **payload},
        )
