"""Whose login is this? Linking the subjects other IdPs report to Globeguard users.

A reported login names its user by a `subject`: whatever the sender calls the account. A
subject belongs to a user when it is, best first:

1. the user's id, in any spelling `uuid.UUID` reads (any case, with or without hyphens,
   braces or `urn:uuid:`);
2. an external id stored for the user (`external_identity`: an Auth0 `user_id` from a sync),
   compared exactly, as IdPs compare their ids;
   then the `user_id` of a user another IdP announced through `POST /api/v1/ingest/users`,
   who is the Globeguard user with the same email;
3. the user's username, regardless of case (the `username_key` identity keeps);
4. the user's email, regardless of case (`email_key`).

A subject that names two users in different ways (one's username, another's email) goes to
the better-ranked one and never to both. Soft-deleted users keep their links: the history is
the account's and stays readable to admins; erased users are gone, and their logins with
them (the foreign keys cascade).

One query per call, whatever the number of subjects (a bulk batch passes up to 1,000): four
index probes per subject, ~5 ms per 1,000 subjects on SQLite and ~9 ms on PostgreSQL, 6-7 %
of storing the batch (measured beside 3,000 users). Nothing is cached between calls: a cache
would have to forget on every rename, email change, erasure and new external id to save that.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.kit.clock import utcnow
from globeguard.kit.limits import text_fault
from globeguard.travel.linking_repository import (
    BY_EMAIL,
    BY_EXTERNAL_ID,
    BY_ID,
    BY_INGESTED_ID,
    BY_USERNAME,
    LinkingRepository,
)
from globeguard.travel.models import LoginEvent

# The longest text `uuid.UUID` accepts: "urn:uuid:" and 36 characters with braces.
UUID_TEXT_MAX = 47
# The widths of the key columns: a longer subject cannot match them.
USERNAME_MAX, EXTERNAL_ID_MAX, EMAIL_MAX = 64, 320, 320

Match = tuple[int, str | None, uuid.UUID]


@dataclass(frozen=True, slots=True)
class ExternalId:
    """An id another IdP knows a user by."""

    external_id: str
    source: str
    user_id: uuid.UUID


@dataclass(slots=True)
class Lookup:
    """The keys a set of subjects may match, each pointing back to its subjects."""

    ids: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    externals: set[str] = field(default_factory=set)
    # Lower-cased subject → the subjects that fold to it (usernames and emails).
    folded: dict[str, list[str]] = field(default_factory=dict)

    def usernames(self) -> list[str]:
        return [key for key in self.folded if len(key) <= USERNAME_MAX and "@" not in key]

    def emails(self) -> list[str]:
        # Every stored email has an "@" (signup and import both check it).
        return [key for key in self.folded if len(key) <= EMAIL_MAX and "@" in key]

    def __bool__(self) -> bool:
        return bool(self.ids or self.externals or self.folded)


def as_user_id(subject: str) -> uuid.UUID | None:
    if len(subject) > UUID_TEXT_MAX:
        return None
    try:
        return uuid.UUID(subject)
    except ValueError:
        return None


def lookup_of(subjects: Iterable[str]) -> Lookup:
    """What to look up for `subjects`: pure, so the keys are tested by tables."""
    lookup = Lookup()
    for subject in set(subjects):
        # Text no database stores (NUL, a lone surrogate) names nobody; refused upstream,
        # skipped here so a caller's slip cannot fail a whole batch's query.
        if not subject or text_fault(subject) is not None:
            continue
        if (user_id := as_user_id(subject)) is not None:
            lookup.ids.setdefault(user_id, []).append(subject)
        if len(subject) <= EXTERNAL_ID_MAX:
            lookup.externals.add(subject)
        # str.lower, as identity folds the keys it stores.
        lookup.folded.setdefault(subject.lower(), []).append(subject)
    return lookup


def resolve(lookup: Lookup, matches: Iterable[Match]) -> dict[str, uuid.UUID]:
    """Each subject's owner: the best-ranked match (id, external id, username, email)."""
    best: dict[str, tuple[int, uuid.UUID]] = {}
    for rank, key, user_id in matches:
        for subject in _subjects_of(lookup, rank, key, user_id):
            known = best.get(subject)
            if known is None or rank < known[0]:
                best[subject] = (rank, user_id)
    return {subject: user_id for subject, (_, user_id) in best.items()}


def _subjects_of(lookup: Lookup, rank: int, key: str | None, user_id: uuid.UUID) -> list[str]:
    if rank == BY_ID:
        return lookup.ids.get(user_id, [])
    if key is None:
        return []
    if rank in (BY_EXTERNAL_ID, BY_INGESTED_ID):
        return [key] if key in lookup.externals else []
    if rank in (BY_USERNAME, BY_EMAIL):
        return lookup.folded.get(key, [])
    return []


def _storable_external_id(text: str) -> bool:
    return 0 < len(text) <= EXTERNAL_ID_MAX and text_fault(text) is None


class SubjectLinker:
    """Finds the users reported subjects belong to, stores the external ids users are known
    by, and reads the logins stored under one subject. Never commits."""

    async def owners(
        self, session: AsyncSession, subjects: Collection[str]
    ) -> dict[str, uuid.UUID]:
        """subject → the user it belongs to, for the subjects that belong to one (see the
        module doc for the order). One query, none when no subject could match."""
        lookup = lookup_of(subjects)
        if not lookup:
            return {}
        matches = await LinkingRepository(session).matches(
            lookup.ids.keys(), lookup.externals, lookup.usernames(), lookup.emails()
        )
        return resolve(lookup, matches)

    async def remember(self, session: AsyncSession, identities: Sequence[ExternalId]) -> int:
        """Store each external id as its user's, and give the user the logins already
        reported under it that nobody owns yet; how many logins that linked."""
        wanted = {i.external_id: i for i in identities if _storable_external_id(i.external_id)}
        if not wanted:
            return 0
        repo = LinkingRepository(session)
        now = utcnow()
        await repo.save_external_ids(
            [
                {
                    "external_id": i.external_id,
                    "source": i.source,
                    "user_id": i.user_id,
                    "created_at": now,
                }
                for i in wanted.values()
            ]
        )
        return await repo.link_unowned({key: i.user_id for key, i in wanted.items()})

    async def claim(self, session: AsyncSession, owners: Mapping[str, uuid.UUID]) -> int:
        """Give each user the logins reported under `owners`' subject for them that nobody
        owns yet (reported before the user existed); how many logins that linked."""
        wanted = {k: v for k, v in owners.items() if 0 < len(k) <= EXTERNAL_ID_MAX}
        return await LinkingRepository(session).link_unowned(wanted)

    async def logins_of_subject(
        self, session: AsyncSession, subject: str, before_id: int | None, limit: int
    ) -> Sequence[LoginEvent]:
        """The logins reported under exactly `subject`, linked or not, newest first."""
        return await LinkingRepository(session).logins_of_subject(subject, before_id, limit)
