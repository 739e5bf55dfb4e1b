"""The dispatcher: fans new outbox events out to subscriptions, claims due deliveries, sends
them, and settles each attempt in the ledger. Runs inside `globeguard serve` (embedded) or
alone in `globeguard worker`; any number of them may share one PostgreSQL database.

One round = one short write transaction (fan-out, lease reclaim, claims for every
subscription) → the sends, outside any transaction → one write transaction settling every
finished attempt. Nothing is sent before it is committed as claimed, and nothing claimed is
lost: a worker that dies mid-send leaves a lease that expires, and the delivery is sent again
with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events import envelope
from globeguard.events.delivery.ratelimit import TokenBucket
from globeguard.events.delivery.repository import (
    DEAD,
    PENDING,
    SUCCEEDED,
    Claimed,
    DeliveryRepository,
    Settlement,
)
from globeguard.events.delivery.schedule import Decision, Response, Verdict, decide
from globeguard.events.filters import matches_any
from globeguard.events.models import OutboxEvent
from globeguard.events.signing import SigningKey, webhook_headers
from globeguard.events.sinks.port import Message, SendResult, Sink
from globeguard.events.subscriptions.repository import SubscriptionRepository
from globeguard.events.subscriptions.service import SubscriptionService
from globeguard.kit.clock import Clock, utcnow
from globeguard.settings import DeliverySettings

log = logging.getLogger(__name__)
SETTLE_LINGER_S = 0.005
SETTLE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Target:
    """A subscription as one round sees it, with its signing keys in the clear."""

    id: uuid.UUID
    kind: str
    target: str
    event_types: tuple[str, ...]
    ordered: bool
    include_pii: bool
    rate_limit_per_s: float | None
    max_in_flight: int
    keys: tuple[SigningKey, ...]


@dataclass(frozen=True, slots=True)
class Job:
    claimed: Claimed
    target: Target
    event: OutboxEvent


@dataclass(slots=True)
class Round:
    """What one claim transaction did, for the loop and for tests."""

    fanned_out: int = 0
    reclaimed: int = 0
    jobs: list[Job] = field(default_factory=list)


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
        self._active: dict[int, asyncio.Task[None]] = {}
        self._settled: asyncio.Queue[Settlement] = asyncio.Queue()

    def wake(self) -> None:
        """An outbox row was committed in this process: look now, not at the next poll."""
        self._wake.set()

    # -- the claim transaction ---------------------------------------------------------------

    async def claim_round(self, capacity: int | None = None) -> Round:
        capacity = self.settings.concurrency if capacity is None else capacity
        now = self.clock()
        done = Round()
        async with self.db.transaction() as session:
            repo = DeliveryRepository(session)
            targets = await self._targets(session, now)
            done.fanned_out = await self._fan_out(repo, targets, now)
            reclaimed = await repo.reclaim_expired(now, self.settings.max_lease_expiries)
            done.reclaimed = len(reclaimed)
            if capacity > 0:
                done.jobs = await self._claim(repo, targets, capacity, now)
        return done

    async def _targets(self, session: AsyncSession, now: datetime) -> list[Target]:
        repo = SubscriptionRepository(session)
        enabled = await repo.enabled()
        secrets = await repo.secrets_of([s.id for s in enabled])
        by_owner: dict[uuid.UUID, list[Any]] = {}
        for secret in secrets:
            by_owner.setdefault(secret.subscription_id, []).append(secret)
        return [
            Target(
                id=s.id,
                kind=s.kind,
                target=s.target,
                event_types=tuple(s.event_types),
                ordered=s.ordered,
                include_pii=s.include_pii,
                rate_limit_per_s=s.rate_limit_per_s,
                max_in_flight=s.max_in_flight,
                keys=tuple(self.subscriptions.signing_keys(by_owner.get(s.id, []), now)),
            )
            for s in enabled
        ]

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
            {
                "event_seq": event.seq,
                "subscription_id": target.id,
                "ordering_key": event.ordering_key,
                "status": PENDING,
                "attempts": 0,
                "lease_expiries": 0,
                "redrives": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for event in events
            for target in targets
            if matches_any(target.event_types, event.type)
        ]
        await repo.insert_deliveries(rows)
        await repo.mark_dispatched([e.seq for e in events], now)
        return len(events)

    async def _claim(
        self, repo: DeliveryRepository, targets: Sequence[Target], capacity: int, now: datetime
    ) -> list[Job]:
        lease_until = now + self.settings.lease
        claimed: list[tuple[Claimed, Target]] = []
        # Rotate the starting subscription so a busy one cannot take every slot every round.
        start = self.rng.randrange(len(targets)) if targets else 0
        for target in [*targets[start:], *targets[:start]]:
            room = capacity - len(claimed)
            if room <= 0:
                break
            limit = await self._room(repo, target, min(room, self.settings.claim_batch))
            if limit <= 0:
                continue
            rows = await repo.claim(
                target.id,
                ordered=target.ordered,
                limit=limit,
                now=now,
                owner=self.worker_id,
                lease_until=lease_until,
            )
            if target.rate_limit_per_s and rows:
                self._bucket(target).take(len(rows))
            claimed += [(row, target) for row in rows]
        events = await repo.events([c.event_seq for c, _ in claimed])
        return [Job(c, t, events[c.event_seq]) for c, t in claimed]

    async def _room(self, repo: DeliveryRepository, target: Target, limit: int) -> int:
        if target.rate_limit_per_s:
            limit = min(limit, self._bucket(target).available())
            if limit <= 0:
                return 0
        if not await repo.lock_subscription(target.id):
            return 0  # another worker is claiming for it right now
        return min(limit, target.max_in_flight - await repo.in_flight(target.id))

    def _bucket(self, target: Target) -> TokenBucket:
        bucket = self._buckets.get(target.id)
        rate = target.rate_limit_per_s or 0.0
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[target.id] = TokenBucket(rate)
        return bucket

    # -- sending -----------------------------------------------------------------------------

    def message(self, job: Job) -> Message:
        body = envelope.body(job.event, include_pii=job.target.include_pii)
        stamp = int(self.clock().timestamp())
        return Message(
            event_id=job.event.event_id,
            event_type=job.event.type,
            target=job.target.target,
            body=body,
            headers=webhook_headers(job.event.event_id, stamp, body, job.target.keys),
        )

    async def send(self, job: Job) -> Settlement:
        attempted_at = self.clock()
        try:
            sink = self.sinks[job.target.kind]
            result = await sink.send(self.message(job))
        except Exception as exc:  # our own failure (a bug, a bad payload) is a failed attempt
            log.exception("delivery %s failed inside the dispatcher", job.claimed.id)
            result = SendResult(None, 0, error=f"internal: {type(exc).__name__}"[:200])
        return self._settlement(job, attempted_at, result)

    def _settlement(self, job: Job, attempted_at: datetime, result: SendResult) -> Settlement:
        decision = decide(
            job.claimed.attempts + 1,
            Response(result.status, result.retry_after_s, result.timed_out),
            self.settings.retry_schedule,
            jitter=self.settings.retry_jitter,
            sample=self.rng.uniform(-1.0, 1.0),
        )
        settled_at = self.clock()
        status = {Verdict.SUCCEEDED: SUCCEEDED, Verdict.DEAD: DEAD}.get(decision.verdict, PENDING)
        return Settlement(
            delivery_id=job.claimed.id,
            subscription_id=job.target.id,
            owner=self.worker_id,
            status=status,
            next_attempt_at=next_attempt(decision, settled_at),
            last_status=result.status,
            last_error=result.error,
            dead_reason=decision.dead_reason,
            finished_at=settled_at if status != PENDING else None,
            attempted_at=attempted_at,
            duration_ms=result.duration_ms,
            outcome=decision.outcome.value,
            response=result.response,
            disable_subscription=decision.disable_subscription,
        )

    # -- settling ----------------------------------------------------------------------------

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        if not settlements:
            return
        now = self.clock()
        async with self.db.transaction() as session:
            await DeliveryRepository(session).settle(settlements, self.worker_id)
            await self._subscription_health(SubscriptionRepository(session), settlements, now)
        if self.metrics is not None:
            for s in settlements:
                self.metrics.delivery_attempts.labels(outcome=s.outcome).inc()

    async def _subscription_health(
        self, repo: SubscriptionRepository, settlements: Sequence[Settlement], now: datetime
    ) -> None:
        """A success clears a subscription's failure run; a run longer than `disable_after`
        disables it; a 410 disables it at once."""
        succeeded = {s.subscription_id for s in settlements if s.status == SUCCEEDED}
        await repo.record_success(sorted(succeeded))
        failed = {s.subscription_id for s in settlements if s.status != SUCCEEDED} - succeeded
        for subscription_id in sorted(failed):
            await repo.record_failure(subscription_id, now)
            if await repo.disable(
                subscription_id, now, "failing", failing_before=now - self.settings.disable_after
            ):
                log.warning("subscription %s disabled after sustained failure", subscription_id)
        for s in settlements:
            if s.disable_subscription and await repo.disable(s.subscription_id, now, "gone_410"):
                log.warning(
                    "subscription %s disabled: its receiver answered 410", s.subscription_id
                )

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
        """Forever: keep up to `concurrency` sends going, settle them in batches, and sleep
        only when there is nothing to claim."""
        settler = asyncio.create_task(self._settle_loop(), name="delivery-settler")
        poll = self.settings.poll_interval.total_seconds()
        try:
            while True:
                self._wake.clear()
                try:
                    done = await self.claim_round(self.settings.concurrency - len(self._active))
                except Exception:  # a DB hiccup must not kill the loop; next round retries
                    log.exception("claiming deliveries failed")
                    await asyncio.sleep(poll)
                    continue
                for job in done.jobs:
                    self._active[job.claimed.id] = asyncio.create_task(self._send_one(job))
                if done.jobs or done.fanned_out == self.settings.fanout_batch:
                    await asyncio.sleep(0)  # more may be due at once; let the sends start
                    if len(self._active) < self.settings.concurrency:
                        continue
                await self._idle(poll)
        finally:
            settler.cancel()
            for task in list(self._active.values()):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler

    async def _idle(self, poll: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), poll)

    async def _send_one(self, job: Job) -> None:
        await self._settled.put(await self.send(job))

    async def _settle_loop(self) -> None:
        while True:
            batch = [await self._settled.get()]
            # Sends finish one by one; settling each alone would make a write transaction
            # (and then a claim transaction) per delivery. A few milliseconds gather a batch.
            await asyncio.sleep(SETTLE_LINGER_S)
            while not self._settled.empty() and len(batch) < SETTLE_BATCH:
                batch.append(self._settled.get_nowait())
            try:
                await self.settle(batch)
            except Exception:  # leases expire and the deliveries are retried
                log.exception("settling %d attempts failed", len(batch))
            for s in batch:
                self._active.pop(s.delivery_id, None)
            self._wake.set()  # slots are free again


def next_attempt(decision: Decision, now: datetime) -> datetime:
    return now + decision.delay if decision.delay is not None else now
