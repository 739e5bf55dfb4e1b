// Country shapes for a planar map. world-atlas polygons are drawn for a sphere: a ring that
// crosses the antimeridian (Russia's Chukotka, Fiji) jumps from +180 to -180 and, drawn flat,
// becomes a band across the whole map. Such rings are unwrapped to run on past 180 instead.
import type { Feature, FeatureCollection, Geometry, Position } from "geojson";

// ISO 3166 numeric code of Antarctica: a sliver at the map's bottom edge that only
// distorts Mercator, and nobody signs in from it.
export const ANTARCTICA = "010";

export function lonSpan(ring: Position[]): number {
  let min = Infinity;
  let max = -Infinity;
  for (const [lon] of ring) {
    if (lon < min) min = lon;
    if (lon > max) max = lon;
  }
  return max - min;
}

/** The ring moved off the antimeridian: when it spans more than half the world, its
 * western-hemisphere points are shifted by +360 so it stays one compact shape. */
export function unwrapRing(ring: Position[]): Position[] {
  if (lonSpan(ring) <= 180) return ring;
  return ring.map(([lon, lat, ...rest]) => (lon < 0 ? [lon + 360, lat, ...rest] : [lon, lat, ...rest]));
}

export function unwrapGeometry(geometry: Geometry): Geometry {
  switch (geometry.type) {
    case "Polygon":
      return { ...geometry, coordinates: geometry.coordinates.map(unwrapRing) };
    case "MultiPolygon":
      return {
        ...geometry,
        coordinates: geometry.coordinates.map((polygon) => polygon.map(unwrapRing)),
      };
    default:
      return geometry;
  }
}

export function planarCountries(collection: FeatureCollection): FeatureCollection {
  const features: Feature[] = collection.features
    .filter((f) => String(f.id) !== ANTARCTICA && f.geometry != null)
    .map((f) => ({ ...f, geometry: unwrapGeometry(f.geometry) }));
  return { ...collection, features };
}
