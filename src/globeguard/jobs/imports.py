"""Importing users in batches: each batch of records becomes one transaction of multi-row
INSERTs and UPDATEs with its outbox events; a record that cannot be imported is reported by
its position and reason and never stops the others."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import event_row
from globeguard.identity.permissions import USER_ROLE
from globeguard.jobs.bulk_repository import UserImportRepository
from globeguard.jobs.reader import Item
from globeguard.jobs.records import ImportedUser, RecordError, to_user

# Auth0 commits imports in chunks too; 1000 rows keep one SQLite write transaction to tens
# of milliseconds, so sign-ins are not held up behind an import.
BATCH_SIZE = 1000
# Errors listed in the report; `failed` counts all of them.
MAX_ERRORS_LISTED = 1000
# Columns an upsert never changes: the row's identity and history.
NEVER_UPDATED = frozenset({"id", "created_at"})


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
    ) -> list[StoredUser]:
        candidates = self._parse(items, now, report)
        repo = UserImportRepository(session)
        existing = await repo.existing(
            [c.row["id"] for _, c in candidates],
            [c.row["username_key"] for _, c in candidates],
            [c.row["email_key"] for _, c in candidates if c.row["email_key"]],
        )
        plan = _Plan(existing, upsert)
        for position, candidate in candidates:
            reason = plan.place(candidate)
            if reason is not None:
                report.reject(position, reason)
        role_id = await repo.role_id(USER_ROLE)
        if role_id is None:
            raise RuntimeError(f"the built-in role '{USER_ROLE}' is missing")
        inserts = [_insert_row(c.row, now) for c in plan.inserts]
        await repo.insert_users(inserts, role_id)
        for columns, rows in _group_updates(plan.updates, now).items():
            await repo.update_users(columns, rows)
        revisions = await repo.revisions([target for target, _ in plan.updates])
        events = [
            _event(EventType.USER_CREATED, r["id"], r["username"], 1, actor, now) for r in inserts
        ]
        events += [
            _event(EventType.USER_UPDATED, target, c.row["username"], revisions[target], actor, now)
            for target, c in plan.updates
        ]
        await repo.record_events(events)
        report.inserted += len(inserts)
        report.updated += len(plan.updates)
        return [StoredUser(c.row["id"], c) for c in plan.inserts] + [
            StoredUser(target, c) for target, c in plan.updates
        ]

    def _parse(
        self, items: Sequence[Item], now: datetime, report: ImportReport
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
            parsed.append((item.position, user))
        return parsed


class _Plan:
    """Decides, record by record, whether it inserts, updates or conflicts, against what is
    stored and what earlier records of the same batch claimed."""

    def __init__(self, existing: Sequence[Any], upsert: bool) -> None:
        self.upsert = upsert
        self.ids = {row[0] for row in existing}
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


def _insert_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**row, "token_version": 1, "revision": 1}


def _group_updates(
    updates: Sequence[tuple[uuid.UUID, ImportedUser]], now: datetime
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Updates grouped by the columns they change (records of one file usually carry the
    same fields, so this is one group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for target, user in updates:
        columns = tuple(sorted((user.given - NEVER_UPDATED) | {"updated_at"}))
        values = {name: user.row[name] for name in columns}
        values.update(id=target, updated_at=now)
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
