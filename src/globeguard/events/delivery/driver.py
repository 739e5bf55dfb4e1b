"""The dispatcher in a running process (`Dispatcher.run`): cycles back to back while there is
work, senders that take jobs as cycles queue them, and sleep only when there is nothing to do.

Each cycle settles the attempts that finished during the previous one and refills their
slots, so batches grow by themselves under load with no timer to wait for. The sends are made
by `concurrency` long-lived senders, not a task per delivery: a sender that finishes one takes
the next at once if a cycle has queued it. The loop fans out when told of new outbox rows (a
commit in this process, a NOTIFY on PostgreSQL), after a full fan-out batch, and at least once
a poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from globeguard.events.delivery.jobs import Job
from globeguard.events.delivery.records import Settlement
from globeguard.kit.periodic import woken_or_after
from globeguard.settings import DeliverySettings

if TYPE_CHECKING:
    from globeguard.events.delivery.dispatcher import Dispatcher

log = logging.getLogger(__name__)
# After a claim skipped for another worker's lock: about one of its cycles. With two workers
# and one subscription, a skipped worker used to idle for the poll interval, so a new event
# waited ~500 ms whenever both woke for it (the p90 commit -> delivery latency with two
# workers was 590 ms, with one 28 ms).
CONTENDED_RETRY_S = 0.005


class Driver:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._woken = asyncio.Event()
        # Deliveries claimed and not yet settled; jobs waiting for a sender; senders waiting
        # for a job; attempts finished since the last cycle.
        self.active: set[int] = set()
        self._queue: deque[Job] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self.settled: list[Settlement] = []
        # Fan out when told of new outbox rows, after a full fan-out batch, or once a poll
        # interval; not on every cycle (two statements that mostly find nothing).
        self._outbox_news = True
        self.fanned_out_at = float("-inf")

    @property
    def woken(self) -> asyncio.Event:
        """Set when there is news to look at; cleared as each cycle starts."""
        return self._woken

    @property
    def settings(self) -> DeliverySettings:
        return self.dispatcher.settings

    def wake(self) -> None:
        self._outbox_news = True
        self._woken.set()

    async def run(self) -> None:
        """Forever, until cancelled: sends in flight are then abandoned (their leases expire
        and the deliveries are claimed again)."""
        poll = self.settings.poll_interval.total_seconds()
        senders = [
            asyncio.create_task(self._sender(), name=f"sender-{i}")
            for i in range(self.settings.concurrency)
        ]
        try:
            while True:
                self._woken.clear()
                batch, self.settled = self.settled, []
                capacity = self.settings.concurrency - len(self.active) + len(batch)
                fan_out = self._fan_out_due(poll)
                try:
                    done = await self.dispatcher.cycle(batch, capacity, fan_out=fan_out)
                except Exception:  # a DB hiccup must not kill the loop; next cycle retries
                    log.exception("delivery cycle failed")
                    self._outbox_news = self._outbox_news or fan_out
                    await self._settle_alone(batch)
                    await asyncio.sleep(poll)
                    continue
                finally:
                    self.active.difference_update(s.delivery_id for s in batch)
                self._queue_jobs(done.jobs)
                if done.fanned_out == self.settings.fanout_batch:
                    self._outbox_news = True  # more are waiting
                    continue
                if self.settled:
                    continue
                if done.jobs:
                    # Let the sends start (and any answers already in arrive) before deciding.
                    await asyncio.sleep(0)
                    if self.settled or len(self.active) < self.settings.concurrency:
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
            self._queue.clear()
            self._parked.clear()
            self.active.clear()

    def _fan_out_due(self, poll: float) -> bool:
        now = time.monotonic()
        if self._outbox_news or now - self.fanned_out_at >= poll:
            self._outbox_news = False
            self.fanned_out_at = now
            return True
        return False

    async def _settle_alone(self, batch: Sequence[Settlement]) -> None:
        """After a failed cycle, the attempts it should have settled get their own try; if
        that fails too, their leases expire and the deliveries are sent again."""
        if not batch:
            return
        try:
            await self.dispatcher.settle(batch)
        except Exception:
            log.exception("settling %d attempts failed", len(batch))

    async def _idle(self, poll: float) -> None:
        await woken_or_after(self._woken, poll)

    def _queue_jobs(self, jobs: Sequence[Job]) -> None:
        self._queue.extend(jobs)
        self.active.update(job.claimed.id for job in jobs)
        for _ in range(min(len(jobs), len(self._parked))):
            parked = self._parked.popleft()
            if not parked.done():
                parked.set_result(None)

    async def _sender(self) -> None:
        """Sends queued jobs one after another until cancelled (the loop stopping). A send
        cut short leaves its delivery leased: the lease expires and it is claimed again."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            if not queue:
                parked = loop.create_future()
                self._parked.append(parked)
                await parked
                continue
            settlement = await self.dispatcher.send(queue.popleft())
            # Not `self.settled.append(await …)`: that binds the list before the await, and
            # the loop swaps in a new list each cycle.
            self.settled.append(settlement)
            self._woken.set()
