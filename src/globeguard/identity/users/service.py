"""User lifecycle rules: create, update, soft delete, restore, block, erase, search."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from globeguard.account.breached import BreachedPasswords
from globeguard.account.common_passwords import is_common
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.auth.repository import SessionRepository
from globeguard.identity.models import AuthSession, User
from globeguard.identity.passwords import PasswordHasher
from globeguard.identity.permissions import USER_ROLE
from globeguard.identity.revocation import announce
from globeguard.identity.users import lifecycle
from globeguard.identity.users.repository import RoleRepository, UserRepository
from globeguard.kit.clock import utcnow
from globeguard.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from globeguard.kit.limits import LimitError, check_json, parse_time
from globeguard.settings import AuthSettings, LimitsSettings

# zxcvbn scores at most 72 characters (it raises beyond that); a longer password is at
# least as strong as its prefix.
STRENGTH_PREFIX = 72
WRONG_CURRENT_PASSWORD = "invalid_current_password"  # noqa: S105 - a problem code
COMMON_PASSWORD = "password_too_common"  # noqa: S105 - a problem code


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A password change checked and hashed, ready to be written."""

    user_id: uuid.UUID
    # The stored hash the current password was verified against: the write is refused
    # if it changed since.
    verified_hash: str | None
    new_hash: str


class UserService:
    def __init__(
        self,
        hasher: PasswordHasher,
        auth: AuthSettings,
        limits: LimitsSettings,
        breached: BreachedPasswords | None = None,
    ):
        self.hasher = hasher
        self.auth = auth
        self.limits = limits
        # The optional range API (GLOBEGUARD_ACCOUNT__BREACHED_RANGE_URL); None when unset.
        self.breached = breached

    async def create(
        self,
        session: AsyncSession,
        data: dict[str, Any],
        *,
        actor: str | None,
        roles: Sequence[str] | None,
    ) -> User:
        username = data["username"]
        email = data.get("email")
        await self.check_password(data["password"], username, email)
        self.check_metadata("user_metadata", data.get("user_metadata") or {})
        self.check_metadata("app_metadata", data.get("app_metadata") or {})
        # Scored and hashed before the first statement, which begins the write transaction
        # (on SQLite: the process's one writer connection and the file's write lock); inside
        # it, zxcvbn and argon2 held the writer 53-128 ms per sign-up and every other write
        # waited. Hashing first also makes a taken username cost the same time as a free one,
        # so the response time does not tell which usernames exist.
        password_hash = await self.hasher.hash(data["password"])
        repo = UserRepository(session)
        await self._ensure_unique(repo, username.lower(), email.lower() if email else None, None)
        user = User(
            id=uuid.uuid4(),
            username=username,
            username_key=username.lower(),
            email=email,
            email_key=email.lower() if email else None,
            password_hash=password_hash,
            given_name=data.get("given_name"),
            family_name=data.get("family_name"),
            user_metadata=data.get("user_metadata") or {},
            app_metadata=data.get("app_metadata") or {},
        )
        repo.add(user)
        await repo.flush()
        await self._assign_roles(session, user.id, roles or [USER_ROLE])
        await record(
            session,
            EventType.USER_CREATED,
            actor=actor or f"user:{user.id}",
            aggregate_type="user",
            aggregate_id=str(user.id),
            user_id=user.id,
            aggregate_version=user.revision,
            payload={"user_id": str(user.id), "username": user.username},
        )
        return user

    async def _assign_roles(
        self, session: AsyncSession, user_id: uuid.UUID, names: Sequence[str]
    ) -> None:
        roles = RoleRepository(session)
        for name in dict.fromkeys(names):
            role = await roles.by_name(name)
            if role is None:
                raise Unprocessable(f"no role named '{name}'", code="role_not_found")
            roles.assign(user_id, role.id)
        await session.flush()

    async def _ensure_unique(
        self,
        repo: UserRepository,
        username_key: str | None,
        email_key: str | None,
        user_id: uuid.UUID | None,
    ) -> None:
        if username_key and await repo.username_taken(username_key):
            raise Conflict("that username is taken", code="username_taken")
        if email_key and await repo.email_taken(email_key, except_user=user_id):
            raise Conflict("that email is already registered", code="email_taken")

    async def check_password(self, password: str, username: str, email: str | None) -> None:
        """The one check of a new password, for every path that sets one (sign-up, admin
        create, change, reset). Call it before the write transaction begins: with the range
        API configured it waits on the network (up to its timeout)."""
        if password.lower() == username.lower():
            raise Unprocessable("password must differ from the username", code="weak_password")
        if is_common(password):
            raise Unprocessable(
                "this is one of the most common passwords, which attackers try first; "
                "choose a different one",
                code=COMMON_PASSWORD,
            )
        await self._check_strength(password, username, email)
        # Last: a password the local checks refuse is never sent anywhere.
        if self.breached is not None:
            await self.breached.check(password)

    async def _check_strength(self, password: str, username: str, email: str | None) -> None:
        if self.auth.min_password_score == 0:
            return
        hints = [username] + ([email] if email else [])
        result = await anyio.to_thread.run_sync(zxcvbn, password[:STRENGTH_PREFIX], hints)
        if result["score"] < self.auth.min_password_score:
            feedback = result.get("feedback") or {}
            advice = feedback.get("warning") or "add more words or characters"
            raise Unprocessable(
                f"password is too easy to guess: {advice}",
                code="weak_password",
                score=result["score"],
                suggestions=feedback.get("suggestions", []),
            )

    def check_metadata(self, field: str, value: dict[str, Any]) -> None:
        try:  # bodies were checked already; this covers every other caller too
            check_json(value)
        except LimitError as exc:
            raise Unprocessable(str(exc.within(field)), code=exc.code) from None
        size = len(orjson.dumps(value))
        if size > self.limits.metadata_max_bytes:
            raise Unprocessable(
                f"{field} is {size} bytes; the limit is {self.limits.metadata_max_bytes}",
                code="metadata_too_large",
            )

    async def get(
        self, session: AsyncSession, user_id: uuid.UUID, *, include_deleted: bool
    ) -> User:
        user = await UserRepository(session).get(user_id)
        if user is None or (user.status == "deleted" and not include_deleted):
            raise NotFound("no such user", code="user_not_found")
        return user

    async def update(
        self, session: AsyncSession, user: User, changes: dict[str, Any], actor: str
    ) -> User:
        if "email" in changes:
            email = changes["email"]
            await self._ensure_unique(
                UserRepository(session), None, email.lower() if email else None, user.id
            )
            email_key = email.lower() if email else None
            # A new address (or none) is not verified; the same one set again keeps its state.
            if email_key != user.email_key:
                user.email_verified = False
            user.email, user.email_key = email, email_key
        for field in ("given_name", "family_name", "email_verified"):
            if field in changes:
                setattr(user, field, changes[field])
        for field in ("user_metadata", "app_metadata"):
            if changes.get(field) is not None:
                merged = merge_metadata(getattr(user, field), changes[field])
                self.check_metadata(field, merged)
                setattr(user, field, merged)
        await self._changed(session, user, actor, fields=tuple(sorted(changes)))
        return user

    async def _changed(
        self,
        session: AsyncSession,
        user: User,
        actor: str,
        *,
        status: tuple[str, str] | None = None,
        password: bool = False,
        fields: tuple[str, ...] = (),
        keep_session: uuid.UUID | None = None,
        compromised: bool = False,
    ) -> int:
        """The account's new revision, then the one lifecycle operation every path shares
        (it revokes, announces and records what the change calls for). Returns how many
        sessions it ended."""
        now = utcnow()
        user.revision += 1
        user.updated_at = now
        change = lifecycle.AccountChange(
            user.id,
            user.revision,
            password=password,
            status=status,
            fields=fields,
            keep_session=keep_session,
            compromised=compromised,
        )
        return await lifecycle.apply(session, [change], actor=actor, now=now)

    async def require_password_reset(
        self, session: AsyncSession, user_id: uuid.UUID, actor: str
    ) -> tuple[User, int]:
        """The account is presumed taken over: its password no longer signs in until it is
        set again, and every session, refresh token, access token and API key ends. Returns
        the user and how many sessions ended."""
        user = await UserRepository(session).get_for_update(user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        user.password_reset_required = True
        return user, await self._changed(session, user, actor, compromised=True)

    async def new_password(self, user: User, current: str, new: str) -> NewPassword:
        """Verify the current password, score and hash the new one. Takes a `user` read
        outside the write transaction: argon2 and zxcvbn take 50-130 ms here, and a write
        transaction open meanwhile would hold the writer (on SQLite, the only one)."""
        verdict = await self.hasher.verify(user.password_hash, current)
        if not verdict.ok:
            raise Forbidden("the current password is wrong", code=WRONG_CURRENT_PASSWORD)
        await self.check_password(new, user.username, user.email)
        return NewPassword(user.id, user.password_hash, await self.hasher.hash(new))

    async def change_password(
        self, session: AsyncSession, change: NewPassword, keep_session: uuid.UUID | None
    ) -> int:
        """Store a password from `new_password`. Returns how many other sessions were ended.
        The caller's own session survives, so changing a password does not sign you out of
        the device you did it on."""
        user = await UserRepository(session).get_for_update(change.user_id)
        if user is None or user.status == "deleted":
            raise NotFound("no such user", code="user_not_found")
        if user.password_hash != change.verified_hash:
            # Another change landed after our read: storing ours would silently undo it,
            # and the current password we verified is no longer the current one.
            raise Conflict(
                "the password was changed meanwhile; try again with the new one",
                code="password_changed_concurrently",
            )
        user.password_hash = change.new_hash
        return await self._changed(
            session, user, f"user:{user.id}", password=True, keep_session=keep_session
        )

    async def reset_password(
        self, session: AsyncSession, user: User, new_hash: str, actor: str
    ) -> int:
        """Store a password set without the current one, on proof of the mailbox (a reset
        link): every session, refresh family and access token ends, a required reset is
        lifted, and the address counts as verified. `user` is locked by the caller; the hash
        was made before the transaction. Returns how many sessions ended."""
        user.password_hash = new_hash
        fields = () if user.email_verified else ("email_verified",)
        user.email_verified = True
        return await self._changed(session, user, actor, password=True, fields=fields)

    async def soft_delete(self, session: AsyncSession, user: User, actor: str) -> User:
        """Every session, refresh token, live access token and API key stops at once; API
        keys are revoked for good, so a restore does not revive them."""
        if user.status == "deleted":
            raise Conflict("user is already deleted", code="user_deleted")
        await self._set_status(session, user, "deleted", actor)
        return user

    async def restore(self, session: AsyncSession, user: User, actor: str) -> User:
        if user.status != "deleted":
            raise Conflict("only deleted users can be restored", code="user_not_deleted")
        await self._set_status(session, user, "active", actor)
        return user

    async def block(self, session: AsyncSession, user: User, actor: str) -> User:
        if user.status != "active":
            raise Conflict(f"user is {user.status}", code=f"user_{user.status}")
        await self._set_status(session, user, "blocked", actor)
        return user

    async def unblock(self, session: AsyncSession, user: User, actor: str) -> User:
        if user.status != "blocked":
            raise Conflict("user is not blocked", code="user_not_blocked")
        await self._set_status(session, user, "active", actor)
        return user

    async def _set_status(self, session: AsyncSession, user: User, status: str, actor: str) -> None:
        before, now = user.status, utcnow()
        user.status = status
        if status == "blocked":
            user.blocked_at = now
        elif before == "blocked":
            user.blocked_at = None
        if status == "deleted":
            user.deleted_at = now
        elif before == "deleted":
            user.deleted_at = None
        await self._changed(session, user, actor, status=(before, status))

    async def erase(self, session: AsyncSession, user: User, actor: str) -> None:
        """Hard delete: the row and everything hanging off it go; the username is freed.
        The audit event keeps only the id."""
        user_id = user.id
        await announce(session, str(user_id))
        await UserRepository(session).delete_row(user)
        await session.flush()
        await record(
            session,
            EventType.USER_ERASED,
            actor=actor,
            aggregate_type="user",
            aggregate_id=str(user_id),
            user_id=user_id,
            payload={"user_id": str(user_id)},
        )

    async def live_sessions(
        self, session: AsyncSession, user_id: uuid.UUID
    ) -> Sequence[AuthSession]:
        return await SessionRepository(session).of_user(user_id, live_only=True, now=utcnow())

    async def page(
        self, session: AsyncSession, where: Any, cursor: str | None, limit: int
    ) -> tuple[Sequence[User], str | None]:
        after = decode_cursor(cursor) if cursor else None
        rows = await UserRepository(session).page(where, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return rows, next_cursor


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def encode_cursor(created_at: datetime, user_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, user_id = raw.split("|")
        # A forged time outside the calendar's margins would overflow converting to UTC.
        return parse_time(created), uuid.UUID(user_id)
    except (ValueError, UnicodeDecodeError) as exc:  # LimitError is a ValueError
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor") from exc
