"""The mail sender: takes committed messages from the outbox and hands them to the mail port.

A message is sent only after the transaction that queued it commits (before, its row does
not exist for anyone else) and is kept until a server took it. Each is claimed with a lease
(see MailRepository.claim_due), so any number of processes can run a sender: a message goes
out once, and one whose sender died goes out when the lease ends (at least once, with the
same Message-ID). A failure is retried with exponential backoff and jitter, up to
`max_attempts`; a permanent refusal (a 5xx to the recipient or data) is not retried. One bad
message fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Row

from globeguard.adapters.mail.port import Mailer, MailSendError, OutgoingMail, TransientMailError
from globeguard.db.session import Database
from globeguard.kit.backoff import ceiling, full_jitter
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.periodic import woken_or_after
from globeguard.mail.outbox import MailOutbox
from globeguard.mail.repository import MailRepository
from globeguard.observability.metrics import Metrics
from globeguard.settings import MailSettings

log = logging.getLogger(__name__)

# Retries after about 30 s, 1, 2, 4, 8, 16, 32 min, then hourly: an SMTP server's restart
# costs a minute, a longer outage is ridden out for hours (10 attempts: about 3 h in all).
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
# Messages claimed per round. Sent one after another, so the lease covers them all.
CLAIM_BATCH = 10
# An idle sender looks for due messages this often (a commit in this process that queued
# mail wakes it at once; other processes' messages wait at most this long).
POLL_INTERVAL_S = 1.0
# After the loop itself fails (the database is down), before trying again.
ERROR_PAUSE_S = 5.0


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after failed attempt number `attempts` (1-based): half the exponential step
    for sure plus up to the other half at random ("equal jitter"), so messages that failed
    together (a server outage) spread out, and none is retried at once."""
    base, cap = RETRY_BASE.total_seconds(), RETRY_CAP.total_seconds()
    step = attempts - 1
    return timedelta(seconds=ceiling(step, base, cap) / 2 + full_jitter(step, base, cap, rand) / 2)


class MailSender:
    def __init__(
        self,
        db: Database,
        outbox: MailOutbox,
        mailer: Mailer,
        settings: MailSettings,
        *,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.mailer = mailer
        self.max_attempts = settings.max_attempts
        self.metrics = metrics
        self.clock = clock
        # One send is bounded by this (the port's own timeout applies per SMTP step), so a
        # claimed batch is surely done, or abandoned, before its lease ends.
        self.send_budget_s = 4 * settings.timeout.total_seconds()
        self._wake = asyncio.Event()
        # One round at a time in this process: `send_due` called while the background loop
        # is mid-round waits for it, so on return every message that was due has been tried
        # (what a test draining the queue relies on).
        self._round = asyncio.Lock()

    def wake(self) -> None:
        """A commit queued mail: look now instead of at the next poll."""
        self._wake.set()

    async def send_due(self, limit: int = 50) -> int:
        """Send the messages due now, up to `limit`; returns how many a server accepted."""
        async with self._round:
            return await self._send_due(limit)

    async def _send_due(self, limit: int) -> int:
        sent = 0
        handled = 0
        while handled < limit:
            batch = await self._claim(min(CLAIM_BATCH, limit - handled))
            if not batch:
                break
            for row in batch:
                sent += await self._send_one(row)
            handled += len(batch)
        return sent

    async def run(self) -> None:
        """Send due messages for as long as the process runs."""
        while True:
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:
                log.exception("mail sender: a round failed")
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            await woken_or_after(self._wake, POLL_INTERVAL_S)

    async def close(self) -> None:
        await self.mailer.close()

    async def _claim(self, limit: int) -> list[Row]:
        now = self.clock()
        lease_until = now + timedelta(seconds=limit * self.send_budget_s + 60)
        async with self.db.read() as session:
            if not await MailRepository(session).any_due(now):
                return []
        async with self.db.transaction() as session:
            return list(await MailRepository(session).claim_due(now, lease_until, limit))

    async def _send_one(self, row: Row) -> int:
        try:
            if row.attempts > self.max_attempts:
                # Its earlier claims ended with their senders (a crash, a kill mid-send).
                raise MailSendError("out of attempts", permanent=True)
            await self._deliver(row)
        except MailSendError as exc:
            await self._failed(row, exc)
            return 0
        async with self.db.transaction() as session:
            await MailRepository(session).mark_sent(row.id, self.clock())
        self._count("sent", row.kind)
        log.debug("mail %s (%s) sent", row.id, row.kind)
        return 1

    async def _deliver(self, row: Row) -> None:
        try:
            body = self.outbox.open_body(row.body_sealed)
        except Exception:  # the instance secret changed, or the row was tampered with
            raise MailSendError("the sealed body cannot be opened", permanent=True) from None
        message = OutgoingMail(
            id=row.id,
            to=row.to_address,
            subject=body.get("subject", row.subject),
            text=body.get("text", ""),
            html=body.get("html", ""),
            kind=row.kind,
        )
        try:
            async with asyncio.timeout(self.send_budget_s):
                await self.mailer.send(message)
        except MailSendError:
            raise
        except TimeoutError:
            raise TransientMailError("timed out") from None
        except Exception as exc:  # an adapter's bug fails this attempt, not the loop
            log.exception("mail %s: the mailer failed unexpectedly", row.id)
            raise TransientMailError(f"unexpected {type(exc).__name__}") from None

    async def _failed(self, row: Row, exc: MailSendError) -> None:
        now = self.clock()
        give_up = exc.permanent or row.attempts >= self.max_attempts
        async with self.db.transaction() as session:
            repo = MailRepository(session)
            if give_up:
                await repo.mark_failed(row.id, exc.reason, now)
            else:
                await repo.mark_retry(row.id, exc.reason, now + retry_delay(row.attempts))
        if give_up:
            self._count("failed", row.kind)
            log.warning(
                "mail %s (%s) failed for good after %d attempts: %s",
                row.id,
                row.kind,
                row.attempts,
                exc.reason,
            )
        else:
            log.info(
                "mail %s (%s) attempt %d failed, will retry: %s",
                row.id,
                row.kind,
                row.attempts,
                exc.reason,
            )

    def _count(self, outcome: str, kind: str) -> None:
        if self.metrics is None:
            return
        counter = self.metrics.mail_sent if outcome == "sent" else self.metrics.mail_failed
        counter.labels(kind=kind).inc()
