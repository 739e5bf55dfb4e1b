"""Second factors: an authenticator app (TOTP) and its recovery codes.

Enrolment is two steps: a secret is handed out (stored sealed, unconfirmed), then a code
from the app proves it was scanned, which activates it and hands out ten recovery codes,
once. Removing the factor or replacing the codes needs a fresh proof (a current code or the
password): a stolen access token alone must not be able to switch the second factor off.

Every code guess goes through the sign-in throttle under a key of the account's own, so
`lockout_threshold` wrong codes (10) lock further guesses for `lockout_window` (15 min,
429 with Retry-After) from anywhere; a right code gives the slots back.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import segno
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.mfa import recovery, totp
from globeguard.account.mfa.repository import FactorRow, MfaRepository
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.service import AuthService
from globeguard.identity.auth.throttle import Attempt, SigninThrottle
from globeguard.identity.models import User
from globeguard.identity.passwords import PasswordHasher
from globeguard.identity.users.service import WRONG_CURRENT_PASSWORD
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.crypto import Sealer
from globeguard.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable

Method = Literal["totp", "recovery"]
INVALID_CODE = "invalid_mfa_code"
NOT_ENROLLED = "mfa_not_enrolled"


class Mailer(Protocol):
    async def send(
        self, session: AsyncSession, *, to: str, template: str, values: dict[str, Any]
    ) -> uuid.UUID: ...


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class MfaStatus:
    enrolled: bool
    pending: bool
    confirmed_at: datetime | None
    recovery_codes_left: int


@dataclass(frozen=True, slots=True)
class Proof:
    """What a request proves itself with: a current code (TOTP or recovery) or the
    password. Exactly one is set (the request schema sees to it)."""

    code: str | None = None
    password: str | None = None


def _seal_purpose(user_id: uuid.UUID) -> str:
    # Bound to the account: a sealed secret copied into another user's row does not open.
    return f"totp-secret:{user_id}"


def _throttle_key(user_id: uuid.UUID) -> str:
    return f"mfa:{user_id}"


def qr_svg(uri: str) -> str:
    """The URI as a self-contained SVG (no external resources, no XML declaration)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", scale=4, border=4, xmldecl=False, svgns=True, title="TOTP QR code"
    )
    return buffer.getvalue().decode()


def invalid_code() -> BadRequest:
    return BadRequest("the code is wrong or was already used", code=INVALID_CODE)


class MfaService:
    def __init__(
        self,
        sealer: Sealer,
        hasher: PasswordHasher,
        throttle: SigninThrottle,
        auth: AuthService,
        mail: Mailer | None,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self.sealer = sealer
        self.hasher = hasher
        self.throttle = throttle
        self.auth = auth
        self.mail = mail
        self.clock = clock

    # --- verification (the step-up flow calls these) ------------------------------------

    async def has_totp(self, session: AsyncSession, user_id: uuid.UUID) -> bool:
        """Whether the user has a confirmed authenticator (a pending one does not count)."""
        return await MfaRepository(session).has_confirmed(user_id)

    async def enabled_among(
        self, session: AsyncSession, user_ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of these users have a confirmed authenticator (one query, for a page of
        users in an admin listing)."""
        return await MfaRepository(session).confirmed_among(user_ids)

    async def check(self, session: AsyncSession, user_id: uuid.UUID, code: str) -> Method | None:
        """Returns "totp" or "recovery" when `code` is accepted (and used up), else None.

        A TOTP code counts within ±1 step, once per step, never for a step older than the
        last one accepted; a recovery code ("xxxx-xxxx-xxxx", any case, spaces or dashes
        anywhere) once. Only a user with a confirmed factor has codes that work. Text that
        cannot be a code is None without counting (it tried nothing); every other miss
        counts towards the account's lockout: raises TooManyRequests (429, Retry-After)
        when the account is locked. Writes in `session`: the caller commits."""
        text = totp.normalise(code[: totp.MAX_INPUT + 1])
        recovery_code = recovery.canonical(text)
        if not totp.looks_like_totp(text) and recovery_code is None:
            return None
        attempt = await self._admit(user_id)
        repo = MfaRepository(session)
        if recovery_code is not None:
            used = await repo.use_recovery_code(
                user_id, recovery.digest(user_id, recovery_code), self.clock()
            )
            method: Method | None = "recovery" if used else None
        else:
            method = "totp" if await self._use_totp(repo, user_id, text) else None
        if method is not None:
            await self.throttle.succeeded(attempt)
        return method

    async def _use_totp(self, repo: MfaRepository, user_id: uuid.UUID, code: str) -> bool:
        factor = await repo.factor(user_id)
        if factor is None or factor.confirmed_at is None:
            return False
        step = totp.matching_step(
            self._secret(user_id, factor), code, self._now_step(), factor.last_step
        )
        # The conditional write decides between concurrent uses of one code.
        return step is not None and await repo.use_step(user_id, step)

    # --- status and enrolment -----------------------------------------------------------

    async def status(self, session: AsyncSession, user_id: uuid.UUID) -> MfaStatus:
        repo = MfaRepository(session)
        factor = await repo.factor(user_id)
        confirmed = factor is not None and factor.confirmed_at is not None
        return MfaStatus(
            enrolled=confirmed,
            pending=factor is not None and not confirmed,
            confirmed_at=factor.confirmed_at if factor is not None else None,
            recovery_codes_left=await repo.recovery_codes_left(user_id) if confirmed else 0,
        )

    async def start_enrolment(self, session: AsyncSession, user: User) -> Enrolment:
        """A new secret, pending until confirmed; replaces an earlier pending one. 409 when
        a confirmed factor exists (it must be removed first, with a proof)."""
        secret = totp.new_secret()
        uri = totp.otpauth_uri(secret, user.username)
        # ~10 ms of pure Python: on a thread, so the event loop keeps serving, and before the
        # write, so the (SQLite) writer is not held while it runs.
        svg = await asyncio.to_thread(qr_svg, uri)
        sealed = self.sealer.seal(secret.encode(), _seal_purpose(user.id))
        if not await MfaRepository(session).put_pending(user.id, sealed, self.clock()):
            raise Conflict(
                "an authenticator is already active; remove it first", code="mfa_already_enrolled"
            )
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)

    async def confirm(
        self, session: AsyncSession, user: User, code: str, *, actor: str, ip: str | None
    ) -> tuple[datetime, list[str]]:
        """Activate the pending factor with a code from the app; returns when, and the ten
        recovery codes (shown this once: only their digests are kept)."""
        text = totp.normalise(code)
        if not totp.looks_like_totp(text):
            raise Unprocessable(
                "the code is the 6 digits the app shows", code="invalid_code_format"
            )
        repo = MfaRepository(session)
        factor = await repo.factor(user.id)
        if factor is None:
            raise NotFound("no enrolment to confirm; start one first", code=NOT_ENROLLED)
        if factor.confirmed_at is not None:
            raise Conflict("the authenticator is already active", code="mfa_already_enrolled")
        attempt = await self._admit(user.id)
        step = totp.matching_step(self._secret(user.id, factor), text, self._now_step(), None)
        now = self.clock()
        if step is None or not await repo.confirm(user.id, factor.secret_sealed, step, now):
            raise invalid_code()
        await self.throttle.succeeded(attempt)
        codes = await self._new_recovery_codes(repo, user.id)
        await self._record(session, EventType.MFA_ENROLLED, user.id, actor, {"factor": "totp"})
        await self._notify_enrolled(session, user, now, ip)
        return now, codes

    # --- changes that need a proof ------------------------------------------------------

    async def remove(
        self, session: AsyncSession, user: User, proof: Proof, *, actor: str, ip: str | None
    ) -> None:
        """Remove the factor (pending or confirmed) and every recovery code."""
        method = await self._prove(session, user, proof, ip)
        removed = await MfaRepository(session).remove(user.id)
        if removed is None:
            raise NotFound("no authenticator to remove", code=NOT_ENROLLED)
        payload = {"factor": "totp", "was_confirmed": removed.confirmed_at is not None}
        await self._record(
            session, EventType.MFA_REMOVED, user.id, actor, {**payload, "proof": method}
        )
        await self._notify_removed(session, user, f"from address {ip or 'unknown'}")

    async def remove_for_user(
        self, session: AsyncSession, user_id: uuid.UUID, *, actor: str
    ) -> None:
        """An administrator removes the factor (pending or confirmed) and every recovery code
        of a user who lost their device. No proof from the user: the caller checked that the
        presenter may change this account. Recorded with the admin as actor."""
        removed = await MfaRepository(session).remove(user_id)
        if removed is None:
            raise NotFound("the user has no authenticator to remove", code=NOT_ENROLLED)
        payload = {"factor": "totp", "was_confirmed": removed.confirmed_at is not None}
        await self._record(
            session, EventType.MFA_REMOVED, user_id, actor, {**payload, "proof": "admin"}
        )
        owner = await session.get(User, user_id)
        if owner is not None:
            await self._notify_removed(session, owner, "by an administrator")

    async def replace_recovery_codes(
        self, session: AsyncSession, user: User, proof: Proof, *, actor: str, ip: str | None
    ) -> list[str]:
        """Ten new recovery codes; every earlier one stops working."""
        method = await self._prove(session, user, proof, ip)
        repo = MfaRepository(session)
        if not await repo.has_confirmed(user.id):
            raise NotFound("recovery codes need an active authenticator", code=NOT_ENROLLED)
        codes = await self._new_recovery_codes(repo, user.id)
        await self._record(
            session, EventType.MFA_RECOVERY_CODES_REPLACED, user.id, actor, {"proof": method}
        )
        return codes

    async def _prove(self, session: AsyncSession, user: User, proof: Proof, ip: str | None) -> str:
        """How the caller proved it is the user: "totp", "recovery" or "password"."""
        if proof.code is not None:
            method = await self.check(session, user.id, proof.code)
            if method is None:
                raise invalid_code()
            return method
        if proof.password is None:
            raise Unprocessable("send a current code or the password", code="proof_required")
        # Before anything touches `session`: the hash must not hold the (SQLite) writer.
        async with self.auth.current_password_check(user, ip):
            verdict = await self.hasher.verify(user.password_hash, proof.password)
            if not verdict.ok:
                raise Forbidden("the password is wrong", code=WRONG_CURRENT_PASSWORD)
        return "password"

    # --- helpers ------------------------------------------------------------------------

    async def _admit(self, user_id: uuid.UUID) -> Attempt:
        # A code guess has no address of its own here (the step-up flow calls `check` too),
        # and the throttle's address counter for "no address" is shared by every caller:
        # the account stands in for the address, so both counters are this account's alone.
        key = _throttle_key(user_id)
        return await self.throttle.admit(key, key)

    def _secret(self, user_id: uuid.UUID, factor: FactorRow) -> str:
        return self.sealer.open(factor.secret_sealed, _seal_purpose(user_id)).decode()

    def _now_step(self) -> int:
        return totp.step_at(self.clock().timestamp())

    async def _new_recovery_codes(self, repo: MfaRepository, user_id: uuid.UUID) -> list[str]:
        codes = recovery.new_codes()
        digests = [recovery.digest(user_id, totp.normalise(code)) for code in codes]
        await repo.replace_recovery_codes(user_id, digests, self.clock())
        return codes

    async def _record(
        self,
        session: AsyncSession,
        type_: EventType,
        user_id: uuid.UUID,
        actor: str,
        payload: dict[str, Any],
    ) -> None:
        await record(
            session,
            type_,
            actor=actor,
            aggregate_type="user",
            aggregate_id=str(user_id),
            user_id=user_id,
            payload={"user_id": str(user_id), **payload},
        )

    async def _notify_enrolled(
        self, session: AsyncSession, user: User, when: datetime, ip: str | None
    ) -> None:
        """Tell the owner a factor was added: if it was not them, they learn it at once."""
        if self.mail is None or not user.email or not user.email_verified:
            return
        await self.mail.send(
            session,
            to=user.email,
            template="mfa_enrolled",
            values={
                "username": user.username,
                "when": when.strftime("%Y-%m-%d %H:%M UTC"),
                "ip": ip or "unknown",
            },
        )

    async def _notify_removed(self, session: AsyncSession, user: User, how: str) -> None:
        """Tell the owner their second factor is gone: a removal they did not make means
        someone else holds their password or session, and their sign-ins are weaker now."""
        if self.mail is None or not user.email or not user.email_verified:
            return
        await self.mail.send(
            session,
            to=user.email,
            template="mfa_removed",
            values={
                "username": user.username,
                "when": self.clock().strftime("%Y-%m-%d %H:%M UTC"),
                "how": how,
            },
        )
