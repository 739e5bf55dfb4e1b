"""Login profiles as the bulk path reads and writes them: by their stored text, each text
parsed at most once per process.

Every batch reads the profile of each of its subjects and writes it back moved past the
batch's events. Parsing one (the JSON, then its places, slots and events) cost about as much
as grading the subject's logins of the batch, and a stream or a busy `POST /v1/` meets the
same subjects batch after batch. So the profile this process wrote is remembered with the
text it wrote: while the row holds that very text, the remembered profile is the one the
text describes. Any other text (written by another process, or ours rolled back) is parsed,
so what is remembered may be stale but is never taken for a text it was not made from.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.kit.clock import as_utc
from globeguard.travel.profile import Profile
from globeguard.travel.profile_repository import ProfileRepository

# Subjects remembered: ~0.5 kB and four tracked objects each (their places and slots are
# shared), ~10 MB in all. Past it the least recently written go, to be parsed again.
REMEMBERED = 20_000


class ProfileStore:
    def __init__(self, capacity: int = REMEMBERED) -> None:
        self._capacity = capacity
        self._parsed: dict[str, tuple[str, Profile]] = {}

    async def read(
        self, session: AsyncSession, subjects: Collection[str]
    ) -> dict[str, tuple[datetime, Profile]]:
        """Each stored profile of these subjects, with the time of the subject's newest
        event."""
        found = {}
        for subject, last_at, text in await ProfileRepository(session).texts_of(subjects):
            profile = self._profile(subject, text)
            if profile is not None:  # else of an older shape: rebuilt from the events
                found[subject] = (as_utc(last_at), profile)
        return found

    async def write(
        self, session: AsyncSession, profiles: Mapping[str, Profile], owners: Mapping[str, UUID]
    ) -> None:
        """Store each subject's profile (in the caller's transaction); `owners` names the
        Globeguard user of the subjects that are one."""
        rows = []
        for subject, profile in profiles.items():
            assert profile.latest is not None
            text = profile.to_text()
            rows.append(
                {
                    "subject": subject,
                    "user_id": owners.get(subject),
                    "last_at": profile.latest.occurred_at,
                    "state": text,
                }
            )
            self._remember(subject, text, profile.as_stored())
        await ProfileRepository(session).upsert(rows)

    def _profile(self, subject: str, text: str) -> Profile | None:
        known = self._parsed.get(subject)
        if known is not None and known[0] == text:
            return known[1]
        profile = Profile.from_doc(orjson.loads(text))
        if profile is not None:
            self._remember(subject, text, profile)
        return profile

    def _remember(self, subject: str, text: str, profile: Profile) -> None:
        parsed = self._parsed
        parsed.pop(subject, None)
        parsed[subject] = (text, profile)
        if len(parsed) > self._capacity:
            del parsed[next(iter(parsed))]
