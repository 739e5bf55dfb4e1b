"""The benches' CPU tallies (per-item CPU by role) and bench/travel.py's table of them with
the rate one core of it allows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import _common
from _common import CpuTallies

from travel import HEALTHZ, INGEST, cpu_lines


def test_cpu_is_counted_per_item_over_the_runs_of_a_side(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter(
        [
            {"loop": 1_000_000, "threads": 0},
            {"loop": 3_000_000, "threads": 1_000_000},  # first run: 2 ms + 1 ms for 10
            {"loop": 3_000_000, "threads": 1_000_000},
            {"loop": 4_000_000, "threads": 1_000_000},  # second run: 1 ms for 10
        ]
    )
    monkeypatch.setattr(_common, "cpu_ns", lambda pids: next(readings))
    tallies = CpuTallies(pid=1, db_url="sqlite+aiosqlite:///x.db")
    for _ in range(2):
        with tallies.counting(INGEST) as count:
            count(10)
    assert tallies.per_item() == {INGEST: {"loop": 150.0, "threads": 50.0}}


def test_clearing_forgets_the_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([{"loop": 0}, {"loop": 9_000_000}, {"loop": 9_000_000}, {"loop": 10_000_000}])
    monkeypatch.setattr(_common, "cpu_ns", lambda pids: next(readings))
    tallies = CpuTallies(pid=1, db_url="sqlite+aiosqlite:///x.db")
    with tallies.counting(HEALTHZ) as count:  # the warm-up: slow first requests
        count(10)
    tallies.clear()
    with tallies.counting(HEALTHZ) as count:
        count(10)
    assert tallies.per_item() == {HEALTHZ: {"loop": 100.0}}


def test_a_side_that_counted_nothing_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "cpu_ns", lambda pids: {"loop": 0})
    tallies = CpuTallies(pid=1, db_url="sqlite+aiosqlite:///x.db")
    with tallies.counting(HEALTHZ) as count:
        count(0)
    assert tallies.per_item() == {}


def test_the_table_gives_the_rate_one_core_of_the_server_cpu_allows() -> None:
    lines = cpu_lines(
        {
            HEALTHZ: {"loop": 200.0, "threads": 50.0},
            INGEST: {"loop": 100.0, "threads": 0.0, "postgres": 400.0},
        }
    )
    healthz, ingest = lines[1], lines[2]
    # 1e6 / (200 + 50) us: PostgreSQL's own CPU is another process's, not in it.
    assert healthz.split()[-1] == "4000/s"
    assert ingest.split()[-1] == "10000/s"
    assert "400.0" in ingest and "-" in healthz.split("|")[2]
