"""Bulk jobs collect cycles between their batches, and leave the collector as they found it;
a serving process's start-up heap is frozen once and stays so."""

from __future__ import annotations

import gc
from typing import Any

from globeguard.kit import collector
from globeguard.kit.collector import collecting_between_batches, freeze_startup_heap


def _cycle() -> None:
    node: dict[str, Any] = {}
    node["self"] = node


def test_cycles_wait_for_the_batch_end_and_then_go() -> None:
    gc.collect()
    frozen = gc.get_freeze_count()
    with collecting_between_batches() as batch_done:
        assert not gc.isenabled()
        before = len(gc.get_objects())
        for _ in range(10_000):  # enough allocations to trigger automatic collections
            _cycle()
        assert len(gc.get_objects()) >= before + 10_000  # none collected on the way
        batch_done()
        assert len(gc.get_objects()) < before + 100
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collecting_between_batches():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_bulk_job_keeps_the_start_up_heap_frozen(monkeypatch) -> None:
    was_frozen = gc.get_freeze_count() > 0
    # The module remembers the freeze; put back what the process had when the heap is.
    monkeypatch.setattr(collector, "_startup_frozen", was_frozen)
    freeze_startup_heap()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with collecting_between_batches() as batch_done:
            _cycle()
            batch_done()
        assert gc.get_freeze_count() == frozen
    finally:
        if not was_frozen:
            gc.unfreeze()


def test_the_start_up_heap_is_frozen_once_per_process(monkeypatch) -> None:
    was_frozen = gc.get_freeze_count() > 0
    monkeypatch.setattr(collector, "_startup_frozen", was_frozen)
    freeze_startup_heap()
    try:
        frozen = gc.get_freeze_count()
        kept = [{"n": i} for i in range(1000)]
        freeze_startup_heap()  # a second app started in this process
        assert gc.get_freeze_count() == frozen and kept
    finally:
        if not was_frozen:
            gc.unfreeze()
