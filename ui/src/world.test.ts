import { describe, expect, it } from "vitest";
import type { FeatureCollection } from "geojson";
import { lonSpan, planarCountries, unwrapRing } from "./world";

describe("unwrapRing", () => {
  it("leaves a ring that does not cross the antimeridian alone", () => {
    const ring = [[10, 50], [20, 50], [20, 40], [10, 50]];
    expect(unwrapRing(ring)).toBe(ring);
  });

  it("moves the western half of a crossing ring past 180", () => {
    const chukotka = [[178, 65], [-175, 66], [-172, 64], [179, 63], [178, 65]];
    const fixed = unwrapRing(chukotka);
    expect(fixed.map(([lon]) => lon)).toEqual([178, 185, 188, 179, 178]);
    expect(lonSpan(fixed)).toBeLessThan(180);
  });
});

describe("planarCountries", () => {
  it("drops Antarctica and fixes multipolygons", () => {
    const collection: FeatureCollection = {
      type: "FeatureCollection",
      features: [
        { type: "Feature", id: "010", properties: {}, geometry: { type: "Polygon", coordinates: [[[-180, -90], [180, -90], [0, -60], [-180, -90]]] } },
        {
          type: "Feature",
          id: "242",
          properties: {},
          geometry: { type: "MultiPolygon", coordinates: [[[[179, -17], [-179, -16], [-179.5, -18], [179, -17]]]] },
        },
      ],
    };
    const result = planarCountries(collection);
    expect(result.features.map((f) => f.id)).toEqual(["242"]);
    const geometry = result.features[0].geometry;
    expect(geometry.type === "MultiPolygon" && geometry.coordinates[0][0].map(([lon]) => lon)).toEqual([179, 181, 180.5, 179]);
  });
});
