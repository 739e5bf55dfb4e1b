// The countries of world-atlas (shipped in the bundle) as planar GeoJSON, made once for every
// map of the dashboard.
import type { FeatureCollection } from "geojson";
import { feature } from "topojson-client";
import countries from "world-atlas/countries-110m.json";
import { planarCountries } from "./world";

let shapes: FeatureCollection | null = null;

export function worldShapes(): FeatureCollection {
  shapes ??= planarCountries(feature(countries as never, (countries as never as { objects: { countries: never } }).objects.countries) as unknown as FeatureCollection);
  return shapes;
}
