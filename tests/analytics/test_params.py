"""Query parameters of the analytics endpoints: defaults, every option, and a reason for
every refusal."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.analytics.params import (
    HEATMAP,
    Basis,
    Measure,
    ParamError,
    PlaceLevel,
    heatmap_params,
    journey_params,
    top_params,
)


def test_defaults():
    params = heatmap_params([])
    assert params.filters.successes == (False, True)
    assert params.filters.verdicts is None and params.filters.query is None
    assert not params.filters.bounded
    assert (params.by, params.basis, params.grid.cell_deg) == (Measure.EVENTS, Basis.ALL, 8.0)
    top = top_params([])
    assert (top.level, top.limit, top.bbox) == (PlaceLevel.CITY, 10, None)
    assert journey_params([]).limit == 200


@pytest.mark.parametrize(
    ("pairs", "check"),
    [
        ([("outcome", "success")], lambda p: p.filters.successes == (True,)),
        ([("outcome", "failure")], lambda p: p.filters.successes == (False,)),
        ([("verdict", "none,impossible")], lambda p: p.filters.verdicts == ("none", "impossible")),
        ([("from", "2026-01-02")], lambda p: p.filters.first == date(2026, 1, 2)),
        ([("to", "2026-01-02")], lambda p: p.filters.bounded),
        ([("q", "  ")], lambda p: p.filters.query is None),
        ([("q", "role:admin")], lambda p: p.filters.query == "role:admin"),
        ([("by", "users")], lambda p: p.by is Measure.USERS),
        ([("basis", "last_login")], lambda p: p.basis is Basis.LAST_LOGIN),
        ([("zoom", "5"), ("bbox", "40,0,50,10")], lambda p: p.grid.cell_deg == 0.25),
    ],
)
def test_options(pairs, check):
    assert check(heatmap_params(pairs))


@pytest.mark.parametrize(
    ("parse", "pairs", "name", "says"),
    [
        (heatmap_params, [("verdcit", "x")], "verdcit", "unknown parameter"),
        (heatmap_params, [("level", "city")], "level", "unknown parameter"),
        (journey_params, [("zoom", "1")], "zoom", "unknown parameter"),
        (heatmap_params, [("zoom", "1"), ("zoom", "2")], "zoom", "more than once"),
        (heatmap_params, [("zoom", "x")], "zoom", "whole number"),
        (heatmap_params, [("zoom", "23")], "zoom", "between"),
        (heatmap_params, [("from", "yesterday")], "from", "not a date"),
        (heatmap_params, [("to", "2026-01-01T00:00:00")], "to", "per UTC day"),
        (heatmap_params, [("from", "2026-02-01"), ("to", "2026-01-01")], "from", "after"),
        (heatmap_params, [("outcome", "maybe")], "outcome", "any, success, failure"),
        (heatmap_params, [("verdict", "none,bad")], "verdict", "'bad'"),
        (heatmap_params, [("by", "rows")], "by", "events, users"),
        (heatmap_params, [("basis", "last_login"), ("outcome", "failure")], "basis", "success"),
        (heatmap_params, [("bbox", "1,2")], "bbox", "four numbers"),
        (top_params, [("level", "street")], "level", "country, region, city"),
        (top_params, [("limit", "101")], "limit", "between 1 and 100"),
        (journey_params, [("verdict", "plausible")], "verdict", "suspicious, impossible"),
        (journey_params, [("limit", "0")], "limit", "between"),
    ],
)
def test_refusals_name_the_parameter_and_the_reason(parse, pairs, name, says):
    with pytest.raises(ParamError) as caught:
        parse(pairs)
    assert caught.value.name == name
    assert says in str(caught.value)


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=5))
def test_any_query_string_parses_or_is_refused_with_a_named_parameter(pairs):
    names = {n for n, _ in pairs}
    known = all(n in HEATMAP for n in names) and len(names) == len(pairs)
    if known:
        return  # values may still be refused; the table above covers those
    with pytest.raises(ParamError) as caught:
        heatmap_params(pairs)
    assert caught.value.name in names
