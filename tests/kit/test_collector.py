"""Bulk jobs collect cycles between their batches, and leave the collector as they found it."""

from __future__ import annotations

import gc
from typing import Any

from globeguard.kit.collector import collecting_between_batches


def _cycle() -> None:
    node: dict[str, Any] = {}
    node["self"] = node


def test_cycles_wait_for_the_batch_end_and_then_go() -> None:
    gc.collect()
    with collecting_between_batches() as batch_done:
        assert not gc.isenabled()
        before = len(gc.get_objects())
        for _ in range(10_000):  # enough allocations to trigger automatic collections
            _cycle()
        assert len(gc.get_objects()) >= before + 10_000  # none collected on the way
        batch_done()
        assert len(gc.get_objects()) < before + 100
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collecting_between_batches():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
