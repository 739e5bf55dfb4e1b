"""Bulk jobs collect cycles between their batches, and leave the collector as they found it;
a serving process's start-up heap is frozen once and stays so."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

from globeguard.kit import collector
from globeguard.kit.collector import collecting_between_batches, freeze_startup_heap


def _in_a_fresh_process(script: str) -> Any:
    """What `script` prints as JSON, run in a new interpreter. A full collection walks every
    live object: in a test process that has run hundreds of tests, each one took seconds, and
    the start-up freeze these tests observe is that process's, shared with every other test."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


def test_cycles_wait_for_the_batch_end_and_then_go() -> None:
    seen = _in_a_fresh_process(
        """
import gc, json, weakref
from globeguard.kit.collector import collecting_between_batches

class Node:
    __slots__ = ("me", "__weakref__")
    def __init__(self):
        self.me = self

gc.collect()
frozen = gc.get_freeze_count()
with collecting_between_batches() as batch_done:
    enabled_during = gc.isenabled()
    # Enough allocations to trigger automatic collections, were the collector on.
    nodes = [weakref.ref(Node()) for _ in range(10_000)]
    alive_before = sum(node() is not None for node in nodes)
    batch_done()
    alive_after = sum(node() is not None for node in nodes)
print(json.dumps({
    "enabled_during": enabled_during,
    "alive_before": alive_before,
    "alive_after": alive_after,
    "enabled_after": gc.isenabled(),
    "frozen": frozen,
    "frozen_after": gc.get_freeze_count(),
}))
"""
    )
    assert not seen["enabled_during"]
    assert seen["alive_before"] == 10_000  # none collected on the way
    assert seen["alive_after"] == 0
    assert seen["enabled_after"]
    assert seen["frozen_after"] == seen["frozen"]


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with collecting_between_batches():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_bulk_job_keeps_the_start_up_heap_frozen() -> None:
    frozen, frozen_after = _in_a_fresh_process(
        """
import gc, json
from globeguard.kit.collector import collecting_between_batches, freeze_startup_heap

class Node:
    def __init__(self):
        self.me = self

freeze_startup_heap()
frozen = gc.get_freeze_count()
with collecting_between_batches() as batch_done:
    Node()
    batch_done()
print(json.dumps([frozen, gc.get_freeze_count()]))
"""
    )
    assert frozen > 0
    assert frozen_after == frozen


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
