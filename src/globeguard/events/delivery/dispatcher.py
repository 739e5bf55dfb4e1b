"""The dispatcher: fans new outbox events out to subscriptions, claims due deliveries, sends
them, and settles each attempt in the ledger. Runs inside `globeguard serve` (embedded) or
alone in `globeguard worker`; any number of them may share one PostgreSQL database.

One cycle = one short write transaction (settle the attempts that finished since the last
cycle, fan out new outbox rows, reclaim expired leases, claim for every subscription up to the
free slots) → the sends, outside any transaction, while the next cycles run. The loop fans
out when told of new rows (a commit in this process, a NOTIFY on PostgreSQL), after a full
batch, and at least once a poll interval. Nothing is sent before it is
committed as claimed, and nothing claimed is lost: a worker that dies mid-send leaves a lease
that expires, and the delivery is sent again with the same `webhook-id`.

Throughput comes from doing little per delivery: statements are built once and each handles a
whole batch (statements.py), one transaction both frees slots and refills them, attempts that
finish while a cycle runs are settled together by the next one (batches grow by themselves
under load, with no timer to wait for), and an event's body is made once however many
subscriptions it goes to (jobs.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events.delivery.jobs import (
    Job,
    Target,
    make_jobs,
    message,
    settlement,
    targets_from_rows,
)
from globeguard.events.delivery.ratelimit import TokenBucket
from globeguard.events.delivery.records import (
    SUCCEEDED,
    Claimed,
    EventRow,
    Settlement,
)
from globeguard.events.delivery.repository import DeliveryRepository
from globeguard.events.filters import matches_any
from globeguard.events.sinks.port import SendResult, Sink
from globeguard.events.subscriptions.repository import SubscriptionRepository
from globeguard.events.subscriptions.service import SubscriptionService
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.periodic import woken_or_after
from globeguard.settings import DeliverySettings

log = logging.getLogger(__name__)
# Expired leases are looked for at most this often (by the dispatcher's clock): a lease lasts
# tens of seconds, and the statement is one of the few in a cycle that is not about the work.
RECLAIM_EVERY = timedelta(seconds=1)
# After a claim skipped for another worker's lock: about one of its cycles. With two workers
# and one subscription, a skipped worker used to idle for the poll interval, so a new event
# waited ~500 ms whenever both woke for it (the p90 commit -> delivery latency with two
# workers was 590 ms, with one 28 ms).
CONTENDED_RETRY_S = 0.005


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
        self._wake = asyncio.Event()
        # run(): deliveries claimed and not yet settled; jobs waiting for a sender; senders
        # waiting for a job; attempts finished since the last cycle.
        self._active: set[int] = set()
        self._jobs: deque[Job] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._settled: list[Settlement] = []
        self._reclaimed_at: datetime | None = None
        # run(): fan out when told of new outbox rows, after a full fan-out batch, or once a
        # poll interval; not on every cycle (two statements that mostly find nothing).
        self._outbox_news = True
        self._fanned_out_at = float("-inf")

    def wake(self) -> None:
        """An outbox row was committed (in this process, or NOTIFYed on PostgreSQL): look
        now, not at the next poll."""
        self._outbox_news = True
        self._wake.set()

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
        async with self.db.transaction() as session:
            repo = DeliveryRepository(session)
            targets = await self._targets(session, now)
            if settlements:
                disabled = await self._settle(session, repo, settlements, now, targets)
                targets = [t for t in targets if t.id not in disabled]
            if fan_out:
                done.fanned_out = await self._fan_out(repo, targets, now)
            if self._reclaim_due(now):
                reclaimed = await repo.reclaim_expired(now, self.settings.max_lease_expiries)
                done.reclaimed = len(reclaimed)
            if capacity > 0:
                claimed, events = await self._claim(repo, targets, capacity, now)
                done.contended = repo.contended
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
        self, repo: DeliveryRepository, targets: Sequence[Target], now: datetime
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
        self, repo: DeliveryRepository, targets: Sequence[Target], capacity: int, now: datetime
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
            await self._settle(session, DeliveryRepository(session), settlements, self.clock())
        self._count(settlements)

    async def _settle(
        self,
        session: AsyncSession,
        repo: DeliveryRepository,
        settlements: Sequence[Settlement],
        now: datetime,
        targets: Sequence[Target] | None = None,
    ) -> set[uuid.UUID]:
        """Settles and returns the subscriptions that this disabled. With the round's
        `targets`, a success clears no failure run they show there is none of: no statement
        for the common case of nothing to clear."""
        await repo.settle(settlements, self.worker_id)
        not_failing = {t.id for t in targets or () if not t.failing}
        return await self._subscription_health(
            SubscriptionRepository(session), settlements, now, not_failing
        )

    def _count(self, settlements: Sequence[Settlement]) -> None:
        if self.metrics is not None and settlements:
            counter = self.metrics.delivery_attempts
            outcomes: dict[str, int] = {}
            for s in settlements:
                outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
            for outcome, count in outcomes.items():
                counter.labels(outcome=outcome).inc(count)

    async def _subscription_health(
        self,
        repo: SubscriptionRepository,
        settlements: Sequence[Settlement],
        now: datetime,
        not_failing: set[uuid.UUID],
    ) -> set[uuid.UUID]:
        """A success clears a subscription's failure run (unless it is known to have none);
        a run longer than `disable_after` disables it; a 410 disables it at once. Returns the
        subscriptions disabled."""
        disabled: set[uuid.UUID] = set()
        succeeded = {s.subscription_id for s in settlements if s.status == SUCCEEDED}
        await repo.record_success(sorted(succeeded - not_failing))
        failed = {s.subscription_id for s in settlements if s.status != SUCCEEDED} - succeeded
        for subscription_id in sorted(failed):
            await repo.record_failure(subscription_id, now)
            if await repo.disable(
                subscription_id, now, "failing", failing_before=now - self.settings.disable_after
            ):
                disabled.add(subscription_id)
                log.warning("subscription %s disabled after sustained failure", subscription_id)
        for s in settlements:
            if s.disable_subscription and await repo.disable(s.subscription_id, now, "gone_410"):
                disabled.add(s.subscription_id)
                log.warning(
                    "subscription %s disabled: its receiver answered 410", s.subscription_id
                )
        return disabled

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
        """Forever: keep up to `concurrency` sends going; each cycle settles what finished
        and refills the free slots; sleep only when there is nothing to do. The sends are
        made by `concurrency` long-lived senders taking jobs from a queue, not by a task per
        delivery: a sender that finishes one takes the next at once, if a cycle queued it."""
        poll = self.settings.poll_interval.total_seconds()
        senders = [
            asyncio.create_task(self._sender(), name=f"sender-{i}")
            for i in range(self.settings.concurrency)
        ]
        try:
            while True:
                self._wake.clear()
                batch, self._settled = self._settled, []
                capacity = self.settings.concurrency - len(self._active) + len(batch)
                fan_out = self._fan_out_due(poll)
                try:
                    done = await self.cycle(batch, capacity, fan_out=fan_out)
                except Exception:  # a DB hiccup must not kill the loop; next cycle retries
                    log.exception("delivery cycle failed")
                    self._outbox_news = self._outbox_news or fan_out
                    await self._settle_alone(batch)
                    await asyncio.sleep(poll)
                    continue
                finally:
                    self._active.difference_update(s.delivery_id for s in batch)
                self._queue_jobs(done.jobs)
                if done.fanned_out == self.settings.fanout_batch:
                    self._outbox_news = True  # more are waiting
                    continue
                if self._settled:
                    continue
                if done.jobs:
                    # Let the sends start (and any answers already in arrive) before deciding.
                    await asyncio.sleep(0)
                    if self._settled or len(self._active) < self.settings.concurrency:
                        continue
                if done.contended:
                    # The lock holder may be claiming rows it cannot see yet (our fan-out, or
                    # its own), or have deliveries we could take: look again once its
                    # transaction is likely over, not a poll interval later.
                    await asyncio.sleep(CONTENDED_RETRY_S)
                    continue
                await self._idle(poll)
        finally:
            for task in senders:
                task.cancel()
            self._jobs.clear()
            self._parked.clear()
            self._active.clear()

    def _fan_out_due(self, poll: float) -> bool:
        now = time.monotonic()
        if self._outbox_news or now - self._fanned_out_at >= poll:
            self._outbox_news = False
            self._fanned_out_at = now
            return True
        return False

    async def _settle_alone(self, batch: Sequence[Settlement]) -> None:
        """After a failed cycle, the attempts it should have settled get their own try; if
        that fails too, their leases expire and the deliveries are sent again."""
        if not batch:
            return
        try:
            await self.settle(batch)
        except Exception:
            log.exception("settling %d attempts failed", len(batch))

    async def _idle(self, poll: float) -> None:
        await woken_or_after(self._wake, poll)

    def _queue_jobs(self, jobs: Sequence[Job]) -> None:
        self._jobs.extend(jobs)
        self._active.update(job.claimed.id for job in jobs)
        for _ in range(min(len(jobs), len(self._parked))):
            parked = self._parked.popleft()
            if not parked.done():
                parked.set_result(None)

    async def _sender(self) -> None:
        """Sends queued jobs one after another until cancelled (the loop stopping). A send
        cut short leaves its delivery leased: the lease expires and it is claimed again."""
        loop = asyncio.get_running_loop()
        jobs = self._jobs
        while True:
            if not jobs:
                parked = loop.create_future()
                self._parked.append(parked)
                await parked
                continue
            settlement = await self.send(jobs.popleft())
            self._settled.append(settlement)
            self._wake.set()
