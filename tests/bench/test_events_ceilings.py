"""bench/events.py's two ceilings of the delivery ratio: the cores all busy at the CPU a
delivery costs everything that shares them, and each delivering process busy on one core."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _common import Series

from events import Backend, cpu_ceiling, interpreter_ceiling


def backend(delivering: int, receiver_max: float) -> Backend:
    return Backend(
        "SQLite, embedded",
        Series("deliveries", "deliveries/s"),
        Series("receiver max", "req/s", [receiver_max]),
        Series("send-only", "req/s"),
        [],
        delivering,
    )


@pytest.mark.parametrize(
    ("delivering", "expected"),
    [(1, 0.5), (2, 1.0)],  # 100 us a delivery: 10,000/s a process, of a 20,000 req/s receiver
)
def test_each_delivering_process_allows_one_over_its_cpu_per_delivery(
    delivering: int, expected: float
) -> None:
    cpu = {"dispatcher loop": 70.0, "dispatcher threads": 30.0, "dispatcher total": 100.0}
    assert interpreter_ceiling(backend(delivering, 20_000), cpu) == pytest.approx(expected)


def test_the_cores_are_shared_by_the_dispatcher_the_receiver_and_postgresql() -> None:
    cpu = {"dispatcher total": 100.0, "receiver": 30.0, "postgres": 70.0}
    # 2 cores at 200 us a delivery: 10,000/s, half the receiver's max.
    assert cpu_ceiling(backend(2, 20_000), cpu, cores=2) == pytest.approx(0.5)


def test_no_ceiling_without_cpu_figures_or_a_baseline() -> None:
    assert interpreter_ceiling(backend(1, 20_000), {}) is None
    assert interpreter_ceiling(backend(1, 0.0), {"dispatcher total": 100.0}) is None
