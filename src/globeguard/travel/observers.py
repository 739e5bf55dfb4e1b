"""Who else learns of stored login events, inside the transaction that stores them.

Both recording paths (one event at a time, and bulk) report here, so a derived store (e.g.
analytics rollups) stays exactly as current as the events themselves: it commits or rolls
back with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class VerdictChange:
    """A stored event whose verdict changed (a late-arriving event re-graded it), or whose
    outcome did: a sign-in held back for a second factor that then passed it, one refused
    after its hash. `old == new` when only the outcome changed."""

    row_id: int
    old: str | None
    new: str
    # The outcome the event was counted with, when that changed too (None: it did not).
    old_success: bool | None = None


class LoginEventObserver(Protocol):
    async def inserted(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        """New events, as the column values written (`login_event` columns; the bulk path
        does not read back ids, so `id` may be absent)."""

    def summarise(self, rows: Sequence[Mapping[str, Any]], owners: Mapping[str, uuid.UUID]) -> Any:
        """What `inserted` would write for these rows, worked out without a database, given
        the Globeguard user of every subject that is one (`owners`). Picklable, so another
        process can do this work (demo seeding); `apply` writes it."""

    async def apply(self, session: AsyncSession, summary: Any) -> None:
        """Write a `summarise` result, once its rows are inserted."""

    async def regraded(self, session: AsyncSession, changes: Sequence[VerdictChange]) -> None:
        """Verdicts or outcomes changed on stored events (ids known)."""


async def notify_inserted(
    observers: Sequence[LoginEventObserver],
    session: AsyncSession,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    for observer in observers:
        await observer.inserted(session, rows)


async def notify_regraded(
    observers: Sequence[LoginEventObserver],
    session: AsyncSession,
    changes: Sequence[VerdictChange],
) -> None:
    if changes:
        for observer in observers:
            await observer.regraded(session, changes)


def summarise_inserted(
    observers: Sequence[LoginEventObserver],
    rows: Sequence[Mapping[str, Any]],
    owners: Mapping[str, uuid.UUID],
) -> tuple[Any, ...]:
    """Each observer's summary of new rows, in the observers' order."""
    return tuple(observer.summarise(rows, owners) for observer in observers)


async def apply_summaries(
    observers: Sequence[LoginEventObserver], session: AsyncSession, summaries: Sequence[Any]
) -> None:
    """Write summaries made by `summarise_inserted` with the same observers."""
    if len(summaries) != len(observers):
        raise ValueError(f"{len(summaries)} summaries for {len(observers)} observers")
    for observer, summary in zip(observers, summaries, strict=True):
        await observer.apply(session, summary)
