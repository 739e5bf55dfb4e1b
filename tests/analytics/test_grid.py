"""The heatmap grid: sizes by zoom, boxes (across the antimeridian too), bounded responses,
and cells nested across sizes so a coarse cell is exactly the sum of its finer ones."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.analytics.grid import (
    FINEST_EXPONENT,
    MAX_EXPONENT,
    MAX_GRID_CELLS,
    MIN_EXPONENT,
    ROW_STRIDE,
    STORED_EXPONENTS,
    BBox,
    Grid,
    cell_centre,
    cell_key,
    choose_grid,
    column_of,
    exponent_for_zoom,
    parse_bbox,
    row_of,
    stored_level,
)

lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
exponents = st.integers(min_value=MIN_EXPONENT, max_value=MAX_EXPONENT)


@pytest.mark.parametrize(
    ("zoom", "cell_deg"),
    [(0, 8.0), (1, 4.0), (2, 2.0), (3, 1.0), (5, 0.25), (8, 0.03125), (22, 0.03125)],
)
def test_cell_size_follows_the_zoom(zoom, cell_deg):
    assert 2.0 ** exponent_for_zoom(zoom) == cell_deg


@pytest.mark.parametrize(
    ("exponent", "level", "factor"),
    [(3, 0, 1), (2, 1, 2), (1, 1, 1), (0, 2, 2), (-1, 2, 1), (-4, 4, 2), (-5, 4, 1)],
)
def test_each_size_reads_the_coarsest_stored_size_that_divides_it(exponent, level, factor):
    grid = Grid(exponent, BBox.world())
    assert (grid.level, grid.factor) == (level, factor)
    assert stored_level(exponent) == level


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,30,40", BBox(10, 20, 30, 40)),
        ("-10,170,10,190", BBox(-10, 170, 10, -170)),  # across the antimeridian
        ("-10,-200,10,-170", BBox(-10, 160, 10, -170)),
        ("-80,-400,80,400", BBox(-80, -180, 80, 180, whole_width=True)),
    ],
)
def test_boxes_parse_as_leaflet_gives_them(text, expected):
    assert parse_bbox(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1,2,3", "a,b,c,d", "10,0,5,1", "-91,0,0,1", "0,0,91,1", "0,5,1,5", "0,nan,1,2", "0,0,1,inf"],
)
def test_bad_boxes_are_refused(text):
    with pytest.raises(ValueError, match="bbox"):
        parse_bbox(text)


def test_a_box_across_the_antimeridian_reads_two_column_ranges():
    grid = Grid(0, parse_bbox("-20,175,-10,185"))
    assert grid.column_ranges(0) == [(355, 359), (0, 5)]
    assert grid.row_range(0) == (70, 80)


def test_a_world_view_at_high_zoom_is_coarsened_until_bounded():
    grid = choose_grid(10, None)
    assert grid.possible_cells() <= MAX_GRID_CELLS
    assert grid.cell_deg > 2.0 ** exponent_for_zoom(10)
    assert choose_grid(10, parse_bbox("48,2,49,3")).cell_deg == 2.0 ** exponent_for_zoom(10)


@given(st.integers(0, 22), lats, lons, st.floats(0.01, 170), st.floats(0.01, 400))
def test_every_chosen_grid_is_bounded(zoom, south, west, height, width):
    north = min(90.0, south + height)
    if north <= south:
        return
    grid = choose_grid(zoom, parse_bbox(f"{south},{west},{north},{west + width}"))
    assert grid.possible_cells() <= MAX_GRID_CELLS or grid.exponent == MAX_EXPONENT


@given(lats, lons, exponents)
def test_a_point_lies_in_its_cell(lat, lon, exponent):
    size = 2.0**exponent
    row, column = row_of(lat, exponent), column_of(lon, exponent)
    centre_lat, centre_lon = cell_centre(row, column, exponent)
    assert abs(centre_lat - lat) <= size / 2 + 1e-9
    wrapped = (lon - centre_lon + 180) % 360 - 180
    assert abs(wrapped) <= size / 2 + 1e-9


@given(lats, lons, exponents)
def test_cells_nest_across_sizes(lat, lon, exponent):
    """The cell at size 2^e is the finest cell divided by 2^(e - finest) on each axis:
    what the SQL re-binning relies on."""
    fine = cell_key(lat, lon, FINEST_EXPONENT)
    factor = 1 << (exponent - FINEST_EXPONENT)
    row, column = divmod(fine, ROW_STRIDE)
    assert (row // factor, column // factor) == (row_of(lat, exponent), column_of(lon, exponent))


@given(lats, lons)
def test_packed_keys_are_non_negative_and_unpack(lat, lon):
    for exponent in STORED_EXPONENTS:
        key = cell_key(lat, lon, exponent)
        assert key >= 0
        row, column = divmod(key, ROW_STRIDE)
        assert 0 <= column < 360 / 2.0**exponent
        assert 0 <= row < 180 / 2.0**exponent


def test_the_poles_and_the_antimeridian_fall_in_edge_cells():
    assert row_of(90.0, 3) == 22 and row_of(-90.0, 3) == 0
    assert column_of(180.0, 3) == column_of(-180.0, 3) == 0
    assert math.isclose(cell_centre(22, 44, 3)[1], 176.0)
