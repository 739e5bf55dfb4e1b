"""bench/statements.py: telling a statement's cost from its transaction's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from statements import Costs, Side, split_costs, summary


@pytest.mark.parametrize(
    ("one", "many", "statements", "expected"),
    [
        (100.0, 500.0, 5, Costs(0.0, 100.0)),  # all of it statements
        (300.0, 700.0, 5, Costs(200.0, 100.0)),
        (300.0, 300.0, 3, Costs(300.0, 0.0)),  # statements free: all of it the transaction
        (57.0, 198.6, 5, Costs(21.6, 35.4)),
    ],
)
def test_split_costs(one: float, many: float, statements: int, expected: Costs) -> None:
    found = split_costs(one, many, statements)
    assert found.transaction == pytest.approx(expected.transaction)
    assert found.statement == pytest.approx(expected.statement)


def test_one_statement_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="at least two statements"):
        split_costs(100.0, 100.0, 1)


def test_summary_averages_runs_and_leaves_out_sides_not_run() -> None:
    threaded = Side()
    threaded.add(1, {"loop": 280.0, "threads": 90.0})
    threaded.add(1, {"loop": 300.0, "threads": 100.0})
    threaded.add(5, {"loop": 770.0})
    threaded.add(5, {"loop": 790.0})
    found = summary({"threaded": threaded, "threaded, one core": Side()}, 5)
    assert list(found) == ["threaded"]
    assert found["threaded"] == {
        "loop_transaction_us": pytest.approx(167.5),
        "loop_statement_us": pytest.approx(122.5),
        "writer_per_transaction_us": pytest.approx(95.0),
    }
