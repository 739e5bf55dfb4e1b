"""The dispatcher: fans new outbox events out to subscriptions, claims due deliveries, sends
them, and settles each attempt in the ledger. Runs inside `globeguard serve` (embedded) or
alone in `globeguard worker`; any number of them may share one PostgreSQL database.

One cycle = one short write transaction (read the enabled subscriptions, settle the attempts
that finished since the last cycle, fan out new outbox rows, reclaim expired leases, claim for
every subscription up to the free slots) → the sends, outside any transaction, while the next
cycles run (driver.py keeps them going in a running process). Nothing is sent before it is
committed as claimed, and nothing claimed is lost: a worker that dies mid-send leaves a lease
that expires, and the delivery is sent again with the same `webhook-id`.

Throughput comes from doing little per delivery: each statement handles a whole batch in one
round trip or one hop to the SQLite writer thread (statements.py: a cycle under load is
subscriptions, settle, claim and commit), one transaction both frees slots and refills them,
attempts that finish while a cycle runs are settled together by the next one, and an event's
body is made once however many subscriptions it goes to (jobs.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events.delivery.driver import Driver
from globeguard.events.delivery.health import record_outcomes
from globeguard.events.delivery.jobs import (
    Job,
    Target,
    make_jobs,
    message,
    settlement,
    targets_from_rows,
)
from globeguard.events.delivery.ledger import LedgerRepository
from globeguard.events.delivery.records import (
    Claimed,
    EventRow,
    Settlement,
)
from globeguard.events.filters import matches_any
from globeguard.events.sinks.port import SendResult, Sink
from globeguard.events.subscriptions.repository import SubscriptionRepository
from globeguard.events.subscriptions.service import SubscriptionService
from globeguard.kit.bucket import TokenBucket
from globeguard.kit.clock import Clock, utcnow
from globeguard.settings import DeliverySettings

log = logging.getLogger(__name__)
# Expired leases are looked for at most this often (by the dispatcher's clock): a lease lasts
# tens of seconds, and the statement is one of the few in a cycle that is not about the work.
RECLAIM_EVERY = timedelta(seconds=1)


@dataclass(slots=True)
class Round:
    """What one claim transaction did, for the loop and for tests."""

    fanned_out: int = 0
    reclaimed: int = 0
    jobs: list[Job] = field(default_factory=list)
    # PostgreSQL: a subscription's claim was skipped, another worker holding its lock.
    contended: bool = False


class Dispatcher:
    def __init__(
        self,
        db: Database,
        subscriptions: SubscriptionService,
        sinks: Mapping[str, Sink],
        settings: DeliverySettings,
        *,
        metrics: Any = None,
        clock: Clock = utcnow,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.subscriptions = subscriptions
        self.sinks = sinks
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._buckets: dict[uuid.UUID, TokenBucket] = {}
        self._reclaimed_at: datetime | None = None
        # The event types each enabled subscription listens to, as the latest cycle read
        # them (None: not known). A change of subscriptions bumps the generation, so that a
        # cycle that read them before the change does not keep its older view.
        self._listening: list[tuple[str, ...]] | None = None
        self._generation = 0
        self.driver = Driver(self)

    def wake(self, types: Collection[str] | None = None) -> None:
        """Outbox rows were committed (in this process, or NOTIFYed on PostgreSQL): look now,
        not at the next poll. Given the committed events' `types`, only when an enabled
        subscription listens to one of them: events nobody listens to are fanned out (to
        nobody, marked dispatched) by the cycle the poll interval brings. A sign-in then costs
        no cycle of its own where nothing listens to sign-ins. None (a NOTIFY, a change of
        subscriptions): look, and read again who listens."""
        if types is None:
            self._generation += 1
            self._listening = None
        elif self._listening is not None and not any(
            matches_any(patterns, type_) for patterns in self._listening for type_ in types
        ):
            return
        self.driver.wake()

    # -- the claim transaction ---------------------------------------------------------------

    async def claim_round(self, capacity: int | None = None) -> Round:
        return await self.cycle((), capacity)

    async def cycle(
        self,
        settlements: Sequence[Settlement],
        capacity: int | None = None,
        *,
        fan_out: bool = True,
    ) -> Round:
        """One write transaction: settle `settlements`, fan out (unless told not to),
        reclaim, claim up to `capacity` deliveries (default: `concurrency`). The subscriptions
        are read first: settling then skips clearing failure runs that are not there."""
        capacity = self.settings.concurrency if capacity is None else capacity
        now = self.clock()
        done = Round()
        claimed: list[tuple[Claimed, Target]] = []
        events: dict[int, EventRow] = {}
        generation = self._generation
        async with self.db.transaction() as session:
            repo = LedgerRepository(session)
            targets = await self._targets(session, now)
            if settlements:
                disabled = await self._settle(session, repo, settlements, now, targets)
                targets = [t for t in targets if t.id not in disabled]
            listening = [t.event_types for t in targets]
            if fan_out:
                done.fanned_out = await self._fan_out(repo, targets, now)
            if self._reclaim_due(now):
                reclaimed = await repo.reclaim_expired(now, self.settings.max_lease_expiries)
                done.reclaimed = len(reclaimed)
            if capacity > 0:
                claimed, events = await self._claim(repo, targets, capacity, now)
                done.contended = repo.contended
        if generation == self._generation:
            self._listening = listening
        # Bodies are made after the commit: the (SQLite: only) writer connection is free.
        done.jobs = make_jobs(claimed, events)
        self._count(settlements)
        return done

    def _reclaim_due(self, now: datetime) -> bool:
        last = self._reclaimed_at
        if last is not None and last <= now < last + RECLAIM_EVERY:
            return False
        self._reclaimed_at = now
        return True

    async def _targets(self, session: AsyncSession, now: datetime) -> list[Target]:
        rows = await SubscriptionRepository(session).enabled_with_keys()
        return targets_from_rows(rows, self.subscriptions.reveal_sealed, now)

    async def _fan_out(
        self, repo: LedgerRepository, targets: Sequence[Target], now: datetime
    ) -> int:
        """One delivery per (new event x matching enabled subscription). A disabled
        subscription misses what happens while it is disabled, as an unsubscribed one would;
        what it already had is held and goes out when it is enabled again."""
        if not await repo.fanout_lock():
            return 0
        events = await repo.undispatched(self.settings.fanout_batch)
        if not events:
            return 0
        rows = [
            (event.seq, target.id, event.ordering_key)
            for event in events
            for target in targets
            if matches_any(target.event_types, event.type)
        ]
        await repo.insert_deliveries(rows, now)
        await repo.mark_dispatched([e.seq for e in events], now)
        return len(events)

    async def _claim(
        self, repo: LedgerRepository, targets: Sequence[Target], capacity: int, now: datetime
    ) -> tuple[list[tuple[Claimed, Target]], dict[int, EventRow]]:
        lease_until = now + self.settings.lease
        claimed: list[tuple[Claimed, Target]] = []
        # Rotate the starting subscription so a busy one cannot take every slot every round.
        start = self.rng.randrange(len(targets)) if targets else 0
        for target in [*targets[start:], *targets[:start]]:
            room = capacity - len(claimed)
            if room <= 0:
                break
            limit = self._room(target, min(room, self.settings.claim_batch))
            if limit <= 0:
                continue
            rows = await repo.claim(
                target.id,
                ordered=target.ordered,
                limit=limit,
                max_in_flight=target.max_in_flight,
                now=now,
                owner=self.worker_id,
                lease_until=lease_until,
            )
            if target.rate_limit_per_s and rows:
                self._bucket(target).take(len(rows))
            claimed += [(row, target) for row in rows]
        events = await repo.events([c.event_seq for c, _ in claimed])
        return claimed, events

    def _room(self, target: Target, limit: int) -> int:
        """`limit`, or fewer when the subscription's rate limit says so. The claim itself
        keeps to `max_in_flight`."""
        if target.rate_limit_per_s:
            limit = min(limit, self._bucket(target).available())
        return limit

    def _bucket(self, target: Target) -> TokenBucket:
        bucket = self._buckets.get(target.id)
        rate = target.rate_limit_per_s or 0.0
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[target.id] = TokenBucket(rate)
        return bucket

    # -- sending -----------------------------------------------------------------------------

    async def send(self, job: Job) -> Settlement:
        """The attempt's settlement, whatever happens: a sink or a decision that raises (a
        bug, a bad payload, an answer nobody foresaw) is a failed attempt on the schedule.
        Only cancellation (shutdown) goes through; the lease then expires and the delivery
        is sent again."""
        attempted_at = self.clock()
        try:
            sink = self.sinks[job.target.kind]
            result = await sink.send(message(job, int(attempted_at.timestamp())))
            return self._settlement(job, attempted_at, result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # an unsettled send would hold its slot forever
            log.error("delivery %s failed inside the dispatcher", job.claimed.id, exc_info=exc)
            failed = SendResult(None, 0, error=f"internal: {type(exc).__name__}"[:200])
            return self._settlement(job, attempted_at, failed)

    def _settlement(self, job: Job, attempted_at: datetime, result: SendResult) -> Settlement:
        return settlement(
            job,
            result,
            owner=self.worker_id,
            attempted_at=attempted_at,
            settled_at=self.clock(),
            settings=self.settings,
            sample=self.rng.uniform(-1.0, 1.0),
        )

    # -- settling ----------------------------------------------------------------------------

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        if not settlements:
            return
        async with self.db.transaction() as session:
            await self._settle(session, LedgerRepository(session), settlements, self.clock())
        self._count(settlements)

    async def _settle(
        self,
        session: AsyncSession,
        repo: LedgerRepository,
        settlements: Sequence[Settlement],
        now: datetime,
        targets: Sequence[Target] | None = None,
    ) -> set[uuid.UUID]:
        """Settles and returns the subscriptions that this disabled. With the round's
        `targets`, a success clears no failure run they show there is none of: no statement
        for the common case of nothing to clear."""
        await repo.settle(settlements, self.worker_id)
        return await record_outcomes(
            SubscriptionRepository(session),
            settlements,
            now,
            disable_after=self.settings.disable_after,
            not_failing={t.id for t in targets or () if not t.failing},
        )

    def _count(self, settlements: Sequence[Settlement]) -> None:
        if self.metrics is not None and settlements:
            counter = self.metrics.delivery_attempts
            outcomes: dict[str, int] = {}
            for s in settlements:
                outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
            for outcome, count in outcomes.items():
                counter.labels(outcome=outcome).inc(count)

    # -- driving it --------------------------------------------------------------------------

    async def run_once(self) -> Round:
        """One whole round, waiting for every send: what tests drive with a moving clock."""
        done = await self.claim_round()
        settlements = await asyncio.gather(*(self.send(job) for job in done.jobs))
        await self.settle(settlements)
        return done

    async def drain(self, max_rounds: int = 1000) -> int:
        """Rounds until nothing is due now; returns how many attempts were made."""
        attempts = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            attempts += len(done.jobs)
            if not done.jobs and not done.fanned_out and not done.reclaimed:
                return attempts
        return attempts

    async def run(self) -> None:
        """Forever, until cancelled: see driver.py."""
        await self.driver.run()
