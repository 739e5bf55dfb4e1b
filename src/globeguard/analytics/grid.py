"""The heatmap's grid. Pure: no I/O, no clock.

Cells are squares of 2^e degrees (e from -5 to 3: 0.03125° ≈ 3.5 km up to 8°), anchored at
(-90, -180), so a cell of size 2^e is exactly a block of (2^(e-f))² cells of any finer size
2^f. Rollups store counts at five of those sizes (`STORED_EXPONENTS`, a factor 4 apart); a
request's grid is read from the coarsest stored size that divides it, re-binned in SQL by
integer division, so it reads at most 4 stored cells per returned cell.

A cell is stored as one integer, `cy * ROW_STRIDE + cx`: the row from the south pole and the
column from the antimeridian, both non-negative, so integer division and modulo mean the same
on SQLite and PostgreSQL.

The requested size follows the map: Leaflet's world is 256·2^zoom pixels wide, and a cell of
about 8 px (under the heat brush's 18 px radius, so cells blend, and small enough that a
coastal city's cell centre stays near the coast) gives a target of 360·8 / (256·2^zoom) =
11.25 / 2^zoom degrees, snapped to a power of two.
A bounding box too large for that size (more than `MAX_GRID_CELLS` possible cells) gets a
coarser one: the response stays bounded whatever the caller asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_EXPONENT = -5
MAX_EXPONENT = 3
STORED_EXPONENTS = (3, 1, -1, -3, -5)
FINEST_EXPONENT = STORED_EXPONENTS[-1]
# 360 / 2^-5 = 11520 columns at the finest size: 2^14 leaves room.
ROW_STRIDE = 1 << 14
MAX_ZOOM = 22
# Possible cells (rows x columns) of one response's grid at most.
MAX_GRID_CELLS = 20_000
# Without a zoom, a bounding box is cut into about this many cells along its longer side.
CELLS_ACROSS = 64


def size_of(exponent: int) -> float:
    return math.ldexp(1.0, exponent)


def stored_level(exponent: int) -> int:
    """Index into STORED_EXPONENTS of the coarsest stored size that divides 2^exponent."""
    for level, stored in enumerate(STORED_EXPONENTS):
        if stored <= exponent:
            return level
    raise ValueError(f"no stored size divides 2^{exponent}")


def row_of(lat: float, exponent: int) -> int:
    # 180 is not a multiple of 8: at the coarsest size the last row reaches past the pole.
    rows = math.ceil(180.0 / size_of(exponent))
    return min(max(math.floor((lat + 90.0) / size_of(exponent)), 0), rows - 1)


def column_of(lon: float, exponent: int) -> int:
    columns = 360 * (1 << (MAX_EXPONENT - exponent)) // 8
    return math.floor((wrap_longitude(lon) + 180.0) / size_of(exponent)) % columns


def pack(row: int, column: int) -> int:
    return row * ROW_STRIDE + column


def cell_key(lat: float, lon: float, exponent: int) -> int:
    return pack(row_of(lat, exponent), column_of(lon, exponent))


def wrap_longitude(lon: float) -> float:
    """Into [-180, 180): Leaflet reports longitudes past ±180 once the map is panned round."""
    return (lon + 180.0) % 360.0 - 180.0


def cell_centre(row: int, column: int, exponent: int) -> tuple[float, float]:
    size = size_of(exponent)
    return -90.0 + (row + 0.5) * size, -180.0 + (column + 0.5) * size


@dataclass(frozen=True, slots=True)
class BBox:
    """South, west, north, east in degrees. `west > east` when the box crosses the
    antimeridian; `whole_width` when it spans every longitude."""

    south: float
    west: float
    north: float
    east: float
    whole_width: bool = False

    @classmethod
    def world(cls) -> BBox:
        return cls(-90.0, -180.0, 90.0, 180.0, whole_width=True)

    @property
    def lat_span(self) -> float:
        return self.north - self.south

    @property
    def lon_span(self) -> float:
        if self.whole_width:
            return 360.0
        return self.east - self.west if self.west <= self.east else 360.0 - self.west + self.east


def parse_bbox(text: str) -> BBox:
    """`south,west,north,east` as Leaflet's `getBounds().toBBoxString()` gives it in
    lat/lon order; longitudes may lie past ±180 (a panned map). ValueError says why not."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError("bbox needs four numbers: south,west,north,east")
    try:
        south, west, north, east = (float(p) for p in parts)
    except ValueError:
        raise ValueError("bbox needs four numbers: south,west,north,east") from None
    if not all(math.isfinite(v) for v in (south, west, north, east)):
        raise ValueError("bbox values must be finite numbers")
    if not -90.0 <= south < north <= 90.0:
        raise ValueError("bbox latitudes must satisfy -90 <= south < north <= 90")
    if west >= east:
        raise ValueError(
            "bbox west must be less than east (a box across the antimeridian runs past 180)"
        )
    if east - west >= 360.0:
        return BBox(south, -180.0, north, 180.0, whole_width=True)
    return BBox(south, wrap_longitude(west), north, wrap_longitude(east))


@dataclass(frozen=True, slots=True)
class Grid:
    """The grid one heatmap response is binned to, and where to read it from."""

    exponent: int
    bbox: BBox

    @property
    def cell_deg(self) -> float:
        return size_of(self.exponent)

    @property
    def level(self) -> int:
        return stored_level(self.exponent)

    @property
    def stored_exponent(self) -> int:
        return STORED_EXPONENTS[self.level]

    @property
    def factor(self) -> int:
        """Stored cells per returned cell, along each axis."""
        return 1 << (self.exponent - self.stored_exponent)

    def finest_factor(self) -> int:
        return 1 << (self.exponent - FINEST_EXPONENT)

    def row_range(self, exponent: int) -> tuple[int, int]:
        """Rows (at size 2^exponent) the box touches, inclusive."""
        return row_of(self.bbox.south, exponent), row_of(self.bbox.north, exponent)

    def column_ranges(self, exponent: int) -> list[tuple[int, int]]:
        """Column ranges (at size 2^exponent) the box touches, inclusive: two when it crosses
        the antimeridian."""
        columns = 360 * (1 << (MAX_EXPONENT - exponent)) // 8
        if self.bbox.whole_width:
            return [(0, columns - 1)]
        west, east = column_of(self.bbox.west, exponent), column_of(self.bbox.east, exponent)
        if self.bbox.west <= self.bbox.east and west <= east:
            return [(west, east)]
        return [(west, columns - 1), (0, east)]

    def possible_cells(self) -> int:
        size = self.cell_deg
        rows = math.ceil(self.bbox.lat_span / size) + 1
        columns = min(math.ceil(self.bbox.lon_span / size) + 1, round(360 / size))
        return rows * columns


def exponent_for_zoom(zoom: int) -> int:
    target = 11.25 / (1 << zoom)
    return _clamp(round(math.log2(target)))


def exponent_for_box(bbox: BBox) -> int:
    target = max(bbox.lat_span, bbox.lon_span) / CELLS_ACROSS
    return _clamp(round(math.log2(target)))


def choose_grid(zoom: int | None, bbox: BBox | None) -> Grid:
    """The grid for a map at `zoom` showing `bbox` (either may be absent: no box is the
    world; no zoom sizes cells to the box), coarsened until it is bounded."""
    box = bbox or BBox.world()
    if zoom is not None:
        exponent = exponent_for_zoom(zoom)
    else:
        exponent = exponent_for_box(box) if bbox is not None else MAX_EXPONENT
    grid = Grid(exponent, box)
    while grid.exponent < MAX_EXPONENT and grid.possible_cells() > MAX_GRID_CELLS:
        grid = Grid(grid.exponent + 1, box)
    return grid


def _clamp(exponent: int) -> int:
    return min(max(exponent, MIN_EXPONENT), MAX_EXPONENT)
