"""Sign-up, sign-in, grants, logout. Unknown users and wrong passwords are indistinguishable:
same 401 body, and both pay for one argon2 verify."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.stepup.policy import Action, Plan
from globeguard.account.stepup.service import (
    MFA_REQUIRED,
    HeldSignin,
    Kind,
    MfaRequired,
    StepUpService,
)
from globeguard.account.stepup.signins import (
    DENIED,
    PASSWORD_RESET,
    StepUpSignins,
    mfa_required_grant,
)
from globeguard.db.session import Database
from globeguard.identity.auth.repository import SessionRepository, SigninRepository
from globeguard.identity.auth.signin_events import (
    record_signin_failed,
    record_signin_succeeded,
    record_signin_suspicious,
)
from globeguard.identity.auth.throttle import SigninThrottle
from globeguard.identity.auth.tokens_service import (
    ClientContext,
    IssuedTokens,
    OAuthError,
    TokenIssuer,
)
from globeguard.identity.clients.repository import ClientRepository
from globeguard.identity.grants import Grants, grants_from, grants_of
from globeguard.identity.models import MachineClient, User
from globeguard.identity.passwords import PasswordHasher
from globeguard.identity.revocation import announce
from globeguard.identity.users.service import WRONG_CURRENT_PASSWORD, UserService
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import same_digest, sha256_hex
from globeguard.kit.errors import Forbidden, Unauthorized
from globeguard.settings import RiskSettings
from globeguard.travel.service import LoginEventService, LoginReport, Recorded, Refusal


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("invalid username or password", keep_changes=True)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    roles: list[str]
    tokens: IssuedTokens


@dataclass(frozen=True, slots=True)
class _Candidate:
    user_id: uuid.UUID | None
    password_hash: str | None
    status: str | None
    token_version: int | None
    grants: Grants | None
    password_reset_required: bool = False
    email: str | None = None
    email_verified: bool = False


class AuthService(StepUpSignins):
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        users: UserService,
        logins: LoginEventService,
        risk: RiskSettings,
        throttle: SigninThrottle,
        stepup: StepUpService | None = None,
    ) -> None:
        # `stepup` is set once the container holds the second factors and the mail outbox.
        self.stepup = stepup
        self.db = db
        self.hasher = hasher
        self.issuer = issuer
        self.users = users
        self.logins = logins
        self.risk = risk
        self.throttle = throttle

    async def signup(
        self, session: AsyncSession, data: dict[str, Any], ctx: ClientContext
    ) -> SignedIn:
        user = await self.users.create(session, data, actor=None, roles=None)
        return await self._session_for(session, user, None, ctx)

    async def signin(
        self,
        session: AsyncSession,
        identifier: str,
        password: str,
        scope: str | None,
        ctx: ClientContext,
    ) -> SignedIn:
        user, grants, tokens = await self._verify(
            session, identifier, password, ctx, scope, Kind.SIGNIN, open_session=True
        )
        assert tokens is not None
        return SignedIn(user, grants.roles, tokens)

    @asynccontextmanager
    async def current_password_check(self, user: User, ip: str | None) -> AsyncIterator[None]:
        """Around a check of a signed-in user's current password (changing it): a wrong one
        counts as a sign-in guess for that account and address, so a stolen access token
        cannot be used to guess the password at a hash per request. Any other outcome,
        success or a refusal of the new password, gives the slots back."""
        attempt = await self.throttle.admit(user.username, ip)
        await self.throttle.admit_account(attempt, user.id)
        try:
            yield
        except Forbidden as exc:
            if exc.code != WRONG_CURRENT_PASSWORD:
                await self.throttle.succeeded(attempt)
            raise
        except BaseException:
            await self.throttle.succeeded(attempt)
            raise
        await self.throttle.succeeded(attempt)

    async def verify_password(
        self,
        session: AsyncSession,
        identifier: str,
        password: str,
        ctx: ClientContext,
        *,
        scope: str | None = None,
        kind: Kind = Kind.SIGNIN,
    ) -> tuple[User, Grants]:
        """Check the password and record the sign-in; returns the user and their grants. A
        sign-in the risk policy sends to a second factor raises MfaRequired (`scope` and
        `kind` are what its step-up completes)."""
        user, grants, _ = await self._verify(
            session, identifier, password, ctx, scope, kind, open_session=False
        )
        return user, grants

    async def _verify(
        self,
        session: AsyncSession,
        identifier: str,
        password: str,
        ctx: ClientContext,
        scope: str | None,
        kind: Kind,
        *,
        open_session: bool,
    ) -> tuple[User, Grants, IssuedTokens | None]:
        """`verify_password`, and with `open_session` the session's tokens too (see
        `_count_signin`)."""
        # Slots are taken before the hash and kept by a failure (see throttle.py).
        attempt = await self.throttle.admit(identifier, ctx.ip)
        candidate = await self._candidate(identifier)
        await self.throttle.admit_account(attempt, candidate.user_id)
        verdict = await self.hasher.verify(candidate.password_hash, password)
        if candidate.user_id is None or not verdict.ok or candidate.status == "deleted":
            await self._failed(session, candidate.user_id, identifier, ctx, "invalid_credentials")
            raise InvalidCredentials()
        await self.throttle.succeeded(attempt)
        if candidate.status == "blocked":
            await self._failed(session, candidate.user_id, identifier, ctx, "blocked")
            raise Forbidden("this account is blocked", code="account_blocked", keep_changes=True)
        if candidate.password_reset_required:
            # Said only to someone who knows the password (checked above), and recorded as a
            # failure: it is no anchor for the next sign-in's journey.
            await self._failed(session, candidate.user_id, identifier, ctx, PASSWORD_RESET)
            raise Forbidden(
                "this password must be changed before it signs in again; ask an administrator",
                code=PASSWORD_RESET,
                keep_changes=True,
            )
        # Judge the journey before anything counts as a success, so a refused sign-in
        # leaves no success behind (no counter, no session, no anchor for the next try).
        plans: list[Plan] = []
        login = await self._login_event(
            session,
            str(candidate.user_id),
            candidate.user_id,
            ctx,
            None,
            self._risk_judge(session, candidate.user_id, candidate.email_verified, plans),
        )
        await record_signin_suspicious(session, candidate.user_id, login)
        if login.refused == MFA_REQUIRED:
            held = HeldSignin(
                candidate.user_id,
                login.event,
                ctx.ip,
                scope,
                kind,
                sha256_hex(candidate.password_hash or ""),
                candidate.email,
            )
            assert self.stepup is not None and plans[0].method is not None
            raise await self.stepup.challenge(session, held, plans[0].method)
        if login.refused:
            await record_signin_failed(session, candidate.user_id, identifier, ctx, login.refused)
            raise Forbidden(DENIED[login.refused], code=login.refused, keep_changes=True)
        user, tokens = await self._count_signin(
            session, candidate, verdict.upgraded_hash, scope, ctx, open_session
        )
        if user is None:  # blocked, deleted or re-keyed while we were hashing
            await self.logins.mark_failed(session, login, "invalid_credentials")
            await record_signin_failed(
                session, candidate.user_id, identifier, ctx, "invalid_credentials"
            )
            raise InvalidCredentials()
        await self.throttle.signed_in(attempt)
        await announce(session, str(user.id), broadcast=False)
        await record_signin_succeeded(
            session,
            user,
            ctx,
            login_event=login.event_uuid,
            travel=login.grade.value,
            hash_upgraded=verdict.upgraded_hash is not None,
        )
        if plans and plans[0].action is Action.NOTIFY and self.stepup is not None:
            await self.stepup.notify(session, user.id, login.event)
        grants = candidate.grants
        if user.token_version != candidate.token_version:
            # What the user may do changed while we were hashing (a role change bumps the
            # version): the token about to carry the new version must carry the new roles.
            grants = await grants_of(session, user.id)
            if open_session:  # the session was not stored with the count: its scope may differ
                tokens = (await self._session_for(session, user, scope, ctx, grants)).tokens
        assert grants is not None
        return user, grants, tokens

    async def _count_signin(
        self,
        session: AsyncSession,
        candidate: _Candidate,
        new_hash: str | None,
        scope: str | None,
        ctx: ClientContext,
        open_session: bool,
    ) -> tuple[User | None, IssuedTokens | None]:
        """Count the sign-in (None: the account changed while its password was hashed). With
        `open_session`, its session is stored in the same step (one statement on PostgreSQL),
        if the grants read before the hash still hold (the token version is unchanged)."""
        assert candidate.user_id is not None and candidate.grants is not None
        repo = SigninRepository(await session.connection())
        if not open_session:
            user = await repo.record_signin(
                candidate.user_id, candidate.password_hash, utcnow(), ctx.ip, new_hash
            )
            return user, None
        roles, scopes = candidate.grants.roles, candidate.grants.session_scopes(scope)
        opening = self.issuer.new_session(candidate.user_id, scopes, ctx)
        user, opened = await repo.record_signin_opening(
            candidate.user_id,
            candidate.password_hash,
            utcnow(),
            ctx.ip,
            new_hash,
            token_version=candidate.token_version,
            session=opening.session_row,
            refresh=opening.refresh_row,
            sessions=SessionRepository(session),
        )
        if user is None or not opened:
            return user, None
        return user, self.issuer.session_tokens(user, roles, scopes, opening)

    async def _login_event(
        self,
        session: AsyncSession,
        subject: str,
        user_id: uuid.UUID | None,
        ctx: ClientContext,
        failure: str | None,
        refuse: Refusal | None = None,
    ) -> Recorded:
        report = LoginReport(
            subject=subject,
            occurred_at=utcnow(),
            success=failure is None,
            source="globeguard",
            ip=ctx.ip,
            user_id=user_id,
            user_agent=ctx.user_agent,
            failure_reason=failure,
        )
        return await self.logins.record(session, report, refuse=refuse, now=utcnow)

    async def _candidate(self, identifier: str) -> _Candidate:
        # A short read that releases its connection before the ~17 ms hash. Roles read here
        # may be stale by the time the token is minted: verify_password compares the token
        # version read here with the one the sign-in's write returns.
        async with self.db.read_engine.connect() as connection:
            found = await SigninRepository(connection).credentials(identifier)
        if found is None:
            return _Candidate(None, None, None, None, None)
        return _Candidate(
            found.user_id,
            found.password_hash,
            found.status,
            found.token_version,
            grants_from(found.roles),
            found.password_reset_required,
            found.email,
            found.email_verified,
        )

    async def _failed(
        self,
        session: AsyncSession,
        user_id: uuid.UUID | None,
        identifier: str,
        ctx: ClientContext,
        reason: str,
    ) -> None:
        """A failed attempt: its login event and its audit row."""
        subject = str(user_id) if user_id else identifier.strip().lower()[:320]
        await self._login_event(session, subject, user_id, ctx, reason)
        await record_signin_failed(session, user_id, identifier, ctx, reason)

    async def _session_for(
        self,
        session: AsyncSession,
        user: User,
        scope: str | None,
        ctx: ClientContext,
        grants: Grants | None = None,
    ) -> SignedIn:
        grants = grants or await grants_of(session, user.id)
        scopes = grants.session_scopes(scope)
        tokens = await self.issuer.start_session(session, user, grants.roles, scopes, ctx)
        return SignedIn(user, grants.roles, tokens)

    async def password_grant(
        self,
        session: AsyncSession,
        username: str,
        password: str,
        scope: str | None,
        ctx: ClientContext,
    ) -> IssuedTokens:
        try:
            _, _, tokens = await self._verify(
                session, username, password, ctx, scope, Kind.PASSWORD_GRANT, open_session=True
            )
        except MfaRequired as exc:
            raise mfa_required_grant(exc) from exc
        except (InvalidCredentials, Forbidden) as exc:
            raise OAuthError("invalid_grant", exc.detail, keep_changes=True) from exc
        assert tokens is not None
        return tokens

    async def authenticate_client(self, client_id: str, secret: str) -> MachineClient:
        async with self.db.read() as session:
            client = await ClientRepository(session).by_client_id(client_id)
        if client is None or client.revoked_at is not None:
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        if not same_digest(secret, client.secret_hash):
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        return client

    async def client_credentials(
        self, client_id: str, secret: str, scope: str | None
    ) -> IssuedTokens:
        client = await self.authenticate_client(client_id, secret)
        granted = set(client.scopes)
        wanted = set(scope.split()) if scope else granted
        if not wanted <= granted:
            raise OAuthError("invalid_scope", f"not granted: {' '.join(sorted(wanted - granted))}")
        access, expires_in = self.issuer.access_token_for_client(client, sorted(wanted))
        return IssuedTokens(access, expires_in, " ".join(sorted(wanted)))
