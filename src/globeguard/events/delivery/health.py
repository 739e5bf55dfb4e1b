"""A subscription's health from its attempts: a success ends a run of failures, a run longer
than `disable_after` disables the subscription, a 410 disables it at once."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence, Set
from datetime import datetime, timedelta

from globeguard.events.delivery.records import SUCCEEDED, Settlement
from globeguard.events.subscriptions.repository import SubscriptionRepository

log = logging.getLogger(__name__)


async def record_outcomes(
    repo: SubscriptionRepository,
    settlements: Sequence[Settlement],
    now: datetime,
    *,
    disable_after: timedelta,
    not_failing: Set[uuid.UUID] = frozenset(),
) -> set[uuid.UUID]:
    """Records what `settlements` say of their subscriptions; returns those it disabled.
    `not_failing` are known to be in no run of failures: a success of theirs costs no
    statement."""
    disabled: set[uuid.UUID] = set()
    succeeded = {s.subscription_id for s in settlements if s.status == SUCCEEDED}
    await repo.record_success(sorted(succeeded - not_failing))
    failed = {s.subscription_id for s in settlements if s.status != SUCCEEDED} - succeeded
    for subscription_id in sorted(failed):
        await repo.record_failure(subscription_id, now)
        if await repo.disable(subscription_id, now, "failing", failing_before=now - disable_after):
            disabled.add(subscription_id)
            log.warning("subscription %s disabled after sustained failure", subscription_id)
    for s in settlements:
        if s.disable_subscription and await repo.disable(s.subscription_id, now, "gone_410"):
            disabled.add(s.subscription_id)
            log.warning("subscription %s disabled: its receiver answered 410", s.subscription_id)
    return disabled
