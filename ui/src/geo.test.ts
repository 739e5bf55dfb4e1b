import { describe, expect, it } from "vitest";
import { bboxParam, cellBounds, greatCircle } from "./geo";

describe("bboxParam", () => {
  it("orders south,west,north,east and clamps latitudes", () => {
    expect(bboxParam({ south: -95, west: -200.123456, north: 91, east: 30 })).toBe("-90,-200.1235,90,30");
  });
});

describe("cellBounds", () => {
  it("aligns cells at -90/-180 like the server's grid", () => {
    expect(cellBounds(48.85, 2.35, 2)).toEqual({ south: 48, west: 2, north: 50, east: 4 });
    expect(cellBounds(-33.9, -70.6, 8)).toEqual({ south: -34, west: -76, north: -26, east: -68 });
  });
});

describe("greatCircle", () => {
  it("starts and ends at the two places", () => {
    const points = greatCircle([40.7, -74], [51.5, -0.1]);
    expect(points[0][0]).toBeCloseTo(40.7);
    expect(points[0][1]).toBeCloseTo(-74);
    expect(points.at(-1)![0]).toBeCloseTo(51.5);
    expect(points.at(-1)![1]).toBeCloseTo(-0.1);
  });

  it("crosses the Pacific without a jump at the antimeridian", () => {
    const points = greatCircle([35.7, 139.7], [37.8, -122.4]);
    for (let i = 1; i < points.length; i++) expect(Math.abs(points[i][1] - points[i - 1][1])).toBeLessThan(20);
    expect(points.at(-1)![1]).toBeCloseTo(-122.4 + 360);
  });

  it("bends towards the pole on a long east-west route", () => {
    const points = greatCircle([40.7, -74], [55.7, 37.6]);
    expect(Math.max(...points.map(([lat]) => lat))).toBeGreaterThan(55.7);
  });
});
