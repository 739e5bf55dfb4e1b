"""A controllable clock for the second-factor service: tests move time by whole steps
instead of sleeping, and a code computed for `clock.now` is the one the server expects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class StepClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(container) -> StepClock:
    # 10 s into a step: a code "now" is unambiguous, and ±1 step stays within the window.
    steady = StepClock(datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC))
    container.mfa.clock = steady
    return steady
