// Map arithmetic: the box sent with a heatmap request, a clicked cell's bounds, and
// great-circle arcs for journeys. Pure.

export interface Bounds {
  south: number;
  west: number;
  north: number;
  east: number;
}

const clampLat = (lat: number) => Math.max(-90, Math.min(90, lat));

/** `south,west,north,east` for the API. Longitudes are sent as the map has them (past ±180
 * when panned round the world); the server wraps them. */
export function bboxParam(b: Bounds): string {
  const south = clampLat(b.south);
  const north = clampLat(b.north);
  const round = (v: number) => Number(v.toFixed(4));
  return [round(south), round(b.west), round(north), round(b.east)].join(",");
}

/** The square of side `cellDeg` (aligned at -90/-180, as the server's grid is) holding a point. */
export function cellBounds(lat: number, lon: number, cellDeg: number): Bounds {
  const row = Math.floor((clampLat(lat) + 90) / cellDeg);
  const col = Math.floor((lon + 180) / cellDeg);
  const south = -90 + row * cellDeg;
  const west = -180 + col * cellDeg;
  return { south, west, north: Math.min(90, south + cellDeg), east: west + cellDeg };
}

const rad = (d: number) => (d * Math.PI) / 180;
const deg = (r: number) => (r * 180) / Math.PI;

/** Points along the great circle from `a` to `b` ([lat, lon]), with longitudes kept
 * continuous (they may pass ±180) so a trans-Pacific arc is drawn across the Pacific. */
export function greatCircle(a: [number, number], b: [number, number], steps = 32): [number, number][] {
  const [lat1, lon1, lat2, lon2] = [rad(a[0]), rad(a[1]), rad(b[0]), rad(b[1])];
  const d =
    2 *
    Math.asin(
      Math.sqrt(
        Math.sin((lat2 - lat1) / 2) ** 2 + Math.cos(lat1) * Math.cos(lat2) * Math.sin((lon2 - lon1) / 2) ** 2,
      ),
    );
  if (d < 1e-9) return [a, b];
  const points: [number, number][] = [];
  let previous = a[1];
  for (let i = 0; i <= steps; i++) {
    const f = i / steps;
    const A = Math.sin((1 - f) * d) / Math.sin(d);
    const B = Math.sin(f * d) / Math.sin(d);
    const x = A * Math.cos(lat1) * Math.cos(lon1) + B * Math.cos(lat2) * Math.cos(lon2);
    const y = A * Math.cos(lat1) * Math.sin(lon1) + B * Math.cos(lat2) * Math.sin(lon2);
    const z = A * Math.sin(lat1) + B * Math.sin(lat2);
    const lat = deg(Math.atan2(z, Math.sqrt(x * x + y * y)));
    let lon = deg(Math.atan2(y, x));
    // Keep each step within 180° of the last: no jump at the antimeridian.
    while (lon - previous > 180) lon -= 360;
    while (lon - previous < -180) lon += 360;
    previous = lon;
    points.push([lat, lon]);
  }
  return points;
}

/** A path with continuous longitudes (as `greatCircle` makes) cut where it crosses ±180 into
 * pieces that each lie within [-180, 180]: the map shows one world, so Tokyo → Los Angeles is
 * drawn as two pieces over the Pacific, leaving the map's right edge and coming back in at
 * its left, never as a line back across Europe and Asia. The crossing point is interpolated
 * so both pieces meet the edge at the same latitude. */
export function splitAtAntimeridian(points: [number, number][]): [number, number][][] {
  if (points.length === 0) return [];
  const pieces: [number, number][][] = [];
  // How far the current piece's longitudes are shifted to fall within [-180, 180].
  let shift = -360 * Math.round(points[0][1] / 360);
  let piece: [number, number][] = [[points[0][0], points[0][1] + shift]];
  for (let i = 1; i < points.length; i++) {
    const [lat0, lon0raw] = points[i - 1];
    const [lat, lonRaw] = points[i];
    let lon = lonRaw + shift;
    while (lon > 180 || lon < -180) {
      const edge = lon > 180 ? 180 : -180;
      const from = lon0raw + shift;
      const f = (edge - from) / (lon - from);
      const crossing = lat0 + f * (lat - lat0);
      piece.push([crossing, edge]);
      pieces.push(piece);
      shift += edge > 0 ? -360 : 360;
      piece = [[crossing, -edge]];
      lon = lonRaw + shift;
    }
    piece.push([lat, lon]);
  }
  pieces.push(piece);
  return pieces.filter((p) => p.length > 1);
}

/** A journey's arc as pieces that stay on the map (see `splitAtAntimeridian`). */
export function arcPieces(a: [number, number], b: [number, number], steps = 32): [number, number][][] {
  return splitAtAntimeridian(greatCircle(a, b, steps));
}
