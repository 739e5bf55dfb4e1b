"""Importing users in batches: each batch of records becomes one transaction of multi-row
INSERTs and UPDATEs with its outbox events; a record that cannot be imported is reported by
its position and reason and never stops the others."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import event_row
from globeguard.identity.authority import acts_as_admin
from globeguard.identity.permissions import USER_ROLE, Permission
from globeguard.identity.users import lifecycle
from globeguard.jobs.bulk_repository import UserImportRepository
from globeguard.jobs.reader import Item
from globeguard.jobs.records import ImportedUser, RecordError, to_user

# Auth0 commits imports in chunks too. A batch's validation and statement building run on
# the event loop: 250 rows keep that to a few milliseconds between yields (1,000 stalled every
# request 40-90 ms per batch), and the job's checkpoint per batch stays a small share.
BATCH_SIZE = 250
# Errors listed in the report; `failed` counts all of them.
MAX_ERRORS_LISTED = 1000
# Columns an upsert never changes: the row's identity and history.
NEVER_UPDATED = frozenset({"id", "created_at"})
# Columns the account lifecycle owns (its own events); the rest are listed by `user.updated`.
STATUS_COLUMNS = frozenset({"status", "blocked_at", "deleted_at"})
LIFECYCLE_COLUMNS = STATUS_COLUMNS | {"password_hash"}
# Lower-cased copies of fields that are listed under their own names.
DERIVED_COLUMNS = frozenset({"username_key", "email_key", "updated_at"})
HASH_REFUSED = "writing password hashes needs the 'users:password_hashes' permission"
ADMIN_REFUSED = (
    "this record would change an admin's account, which needs a job created by a "
    "credential holding every permission"
)


@dataclass(frozen=True, slots=True)
class ImportAuthority:
    """What the job's creator may write, from the effective permissions it was created
    with (`creator_scopes`; a job from before they were recorded has none: least authority)."""

    may_write_hashes: bool
    may_change_admins: bool

    @classmethod
    def of(cls, creator_scopes: Iterable[str] | None) -> ImportAuthority:
        scopes = frozenset(creator_scopes or ())
        return cls(Permission.USERS_PASSWORD_HASHES in scopes, acts_as_admin(scopes))


@dataclass(slots=True)
class ImportReport:
    position_name: str = "line"
    consumed: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, position: int, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append({self.position_name: position, "reason": reason})

    def to_doc(self) -> dict[str, Any]:
        return {
            "position_name": self.position_name,
            "consumed": self.consumed,
            "inserted": self.inserted,
            "updated": self.updated,
            "failed": self.failed,
            "errors": self.errors,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None, position_name: str) -> ImportReport:
        if not doc:
            return cls(position_name=position_name)
        return cls(**{**doc, "errors": list(doc.get("errors", []))})


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A record that was written: the user's id and what it said about its last login."""

    user_id: uuid.UUID
    imported: ImportedUser


class UserImporter:
    def __init__(self, metadata_max_bytes: int) -> None:
        self.metadata_max_bytes = metadata_max_bytes

    async def store_batch(
        self,
        session: AsyncSession,
        items: Sequence[Item],
        *,
        upsert: bool,
        actor: str,
        now: datetime,
        report: ImportReport,
        authority: ImportAuthority,
    ) -> list[StoredUser]:
        candidates = self._parse(items, now, report, authority)
        repo = UserImportRepository(session)
        await repo.plan_for_this_batch()
        existing = await repo.existing(
            [c.row["id"] for _, c in candidates],
            [c.row["username_key"] for _, c in candidates],
            [c.row["email_key"] for _, c in candidates if c.row["email_key"]],
        )
        # Only an upsert can change a stored admin, and only a creator short of admin
        # authority is refused one.
        guarded = upsert and existing and not authority.may_change_admins
        admins = await repo.admins_among([row[0] for row in existing]) if guarded else set()
        plan = _Plan(existing, admins, upsert, authority)
        for position, candidate in candidates:
            reason = plan.place(candidate)
            if reason is not None:
                report.reject(position, reason)
        role_id = await repo.role_id(USER_ROLE)
        if role_id is None:
            raise RuntimeError(f"the built-in role '{USER_ROLE}' is missing")
        inserts = [_insert_row(c.row, now) for c in plan.inserts]
        await repo.insert_users(inserts, role_id)
        updates = [plan.changes(target, user) for target, user in plan.updates]
        for columns, rows in _group_updates(updates, now).items():
            await repo.update_users(columns, rows)
        revisions = await repo.revisions([u.target for u in updates])
        await repo.record_events(
            [_event(EventType.USER_CREATED, r["id"], r["username"], 1, actor, now) for r in inserts]
        )
        # The same operation as the API's: sessions end, token versions move, caches are
        # told, specific events are recorded; set-based for the whole batch.
        changes = [u.account_change(revisions[u.target]) for u in updates]
        await lifecycle.apply(session, changes, actor=actor, now=now)
        report.inserted += len(inserts)
        report.updated += len(updates)
        return [StoredUser(c.row["id"], c) for c in plan.inserts] + [
            StoredUser(target, c) for target, c in plan.updates
        ]

    def _parse(
        self, items: Sequence[Item], now: datetime, report: ImportReport, authority: ImportAuthority
    ) -> list[tuple[int, ImportedUser]]:
        parsed = []
        for item in items:
            if item.error is not None:
                report.reject(item.position, item.error)
                continue
            try:
                user = to_user(item.record, metadata_max_bytes=self.metadata_max_bytes, now=now)
            except RecordError as exc:
                report.reject(item.position, str(exc))
                continue
            if "password_hash" in user.given and not authority.may_write_hashes:
                report.reject(item.position, HASH_REFUSED)
                continue
            parsed.append((item.position, user))
        return parsed


class _Plan:
    """Decides, record by record, whether it inserts, updates or conflicts, against what is
    stored and what earlier records of the same batch claimed."""

    def __init__(
        self,
        existing: Sequence[Any],
        admins: set[uuid.UUID],
        upsert: bool,
        authority: ImportAuthority,
    ) -> None:
        self.upsert = upsert
        self.authority = authority
        self.ids = {row[0] for row in existing}
        # What the lifecycle compares against: (status, password_hash) as stored.
        self.stored: dict[uuid.UUID, tuple[str, str | None]] = {
            row[0]: (row[3], row[4]) for row in existing
        }
        self.admins = admins
        self.usernames: dict[str, uuid.UUID] = {row[1]: row[0] for row in existing}
        self.emails: dict[str, uuid.UUID] = {row[2]: row[0] for row in existing if row[2]}
        self.claimed: set[uuid.UUID] = set()
        self.inserts: list[ImportedUser] = []
        self.updates: list[tuple[uuid.UUID, ImportedUser]] = []

    def place(self, user: ImportedUser) -> str | None:
        row = user.row
        email_owner = self.emails.get(row["email_key"]) if row["email_key"] else None
        username_owner = self.usernames.get(row["username_key"])
        # Auth0's upsert matches on email; ids match first so a re-import is exact.
        target = row["id"] if row["id"] in self.ids else email_owner if self.upsert else None
        named = {row["id"], email_owner, username_owner}
        if self.upsert and named & self.admins and not self.authority.may_change_admins:
            return ADMIN_REFUSED
        if target is not None and target in self.claimed:
            return "the same user appears earlier in this batch"
        if target is None:
            if row["id"] in self.ids or email_owner or username_owner:
                what = (
                    "user_id" if row["id"] in self.ids else "email" if email_owner else "username"
                )
                return f"a user with this {what} exists already (set upsert to update it)"
            self._claim_new(user)
            return None
        if not self.upsert:
            return "a user with this user_id exists already (set upsert to update it)"
        if email_owner not in (None, target):
            return "email: belongs to another user"
        if username_owner not in (None, target) and "username" in user.given:
            return "username: belongs to another user"
        self.claimed.add(target)
        self._own(row, target, "username" in user.given)
        self.updates.append((target, user))
        return None

    def changes(self, target: uuid.UUID, user: ImportedUser) -> _Update:
        """The columns an update writes and what it does to the account: a status or hash
        the same as stored is no change (and keeps, say, when the user was blocked)."""
        status, password_hash = self.stored[target]
        row, columns = user.row, set(user.given - NEVER_UPDATED)
        status_change = None
        if "status" in columns and row["status"] != status:
            status_change = (status, row["status"])
        elif "status" in columns:
            columns -= STATUS_COLUMNS
        password = "password_hash" in columns and row["password_hash"] != password_hash
        fields = tuple(sorted(columns - LIFECYCLE_COLUMNS - DERIVED_COLUMNS))
        return _Update(target, user, frozenset(columns), status_change, password, fields)

    def _claim_new(self, user: ImportedUser) -> None:
        row = user.row
        self.ids.add(row["id"])
        self.claimed.add(row["id"])
        self._own(row, row["id"], True)
        self.inserts.append(user)

    def _own(self, row: dict[str, Any], owner: uuid.UUID, username: bool) -> None:
        if username:
            self.usernames[row["username_key"]] = owner
        if row["email_key"]:
            self.emails[row["email_key"]] = owner


@dataclass(frozen=True, slots=True)
class _Update:
    target: uuid.UUID
    user: ImportedUser
    columns: frozenset[str]
    status: tuple[str, str] | None
    password: bool
    fields: tuple[str, ...]

    def account_change(self, version: int) -> lifecycle.AccountChange:
        return lifecycle.AccountChange(
            self.target, version, password=self.password, status=self.status, fields=self.fields
        )


def _insert_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**row, "token_version": 1, "revision": 1}


def _group_updates(
    updates: Sequence[_Update], now: datetime
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Updates grouped by the columns they change (records of one file usually carry the
    same fields, so this is one group or two)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for update in updates:
        columns = tuple(sorted(update.columns | {"updated_at"}))
        values = {name: update.user.row[name] for name in columns}
        values.update(id=update.target, updated_at=now)
        groups[columns].append(values)
    return groups


def _event(
    type_: EventType, user_id: uuid.UUID, username: str, version: int, actor: str, now: datetime
) -> dict[str, Any]:
    return event_row(
        type_,
        actor=actor,
        aggregate_type="user",
        aggregate_id=str(user_id),
        user_id=user_id,
        payload={"user_id": str(user_id), "username": username},
        aggregate_version=version,
        occurred_at=now,
    )
