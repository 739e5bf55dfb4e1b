import { describe, expect, it } from "vitest";
import { arcPieces, bboxParam, cellBounds, greatCircle, splitAtAntimeridian } from "./geo";

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

describe("arcs across the antimeridian", () => {
  const tokyo: [number, number] = [35.7, 139.7];
  const losAngeles: [number, number] = [34.05, -118.24];
  const onMap = (pieces: [number, number][][]) => pieces.flat().every(([, lon]) => lon >= -180 && lon <= 180);

  it("goes the short way, over the Pacific, in two pieces that stay on the map", () => {
    const pieces = arcPieces(tokyo, losAngeles);
    expect(pieces).toHaveLength(2);
    expect(onMap(pieces)).toBe(true);
    const [west, east] = pieces;
    expect(west[0][1]).toBeCloseTo(139.7);
    expect(west.at(-1)![1]).toBe(180);
    expect(east[0][1]).toBe(-180);
    expect(east.at(-1)![0]).toBeCloseTo(34.05);
    expect(east.at(-1)![1]).toBeCloseTo(-118.24);
    // Never over Europe, Africa or the Atlantic: every point is east of Japan or west of LA.
    for (const [, lon] of pieces.flat()) expect(lon >= 139.7 - 1e-9 || lon <= -118.24 + 1e-9).toBe(true);
  });

  it("meets the edge at the same latitude on both sides", () => {
    const [west, east] = arcPieces(tokyo, losAngeles);
    expect(west.at(-1)![0]).toBeCloseTo(east[0][0], 9);
    // the great circle from Tokyo to LA passes well north of both ends
    expect(west.at(-1)![0]).toBeGreaterThan(40);
  });

  it("crosses westwards too (Los Angeles → Tokyo)", () => {
    const pieces = arcPieces(losAngeles, tokyo);
    expect(pieces).toHaveLength(2);
    expect(onMap(pieces)).toBe(true);
    expect(pieces[0].at(-1)![1]).toBe(-180);
    expect(pieces[1][0][1]).toBe(180);
    expect(pieces[1].at(-1)![1]).toBeCloseTo(139.7);
  });

  it("leaves an arc that does not cross in one piece", () => {
    const pieces = arcPieces([40.7, -74], [51.5, -0.1]);
    expect(pieces).toHaveLength(1);
    expect(pieces[0]).toEqual(greatCircle([40.7, -74], [51.5, -0.1]));
  });

  it("handles a path given past ±180, and an empty one", () => {
    expect(splitAtAntimeridian([[0, 190], [0, 200]])).toEqual([[[0, -170], [0, -160]]]);
    expect(splitAtAntimeridian([[0, 170], [10, 190]])).toEqual([[[0, 170], [5, 180]], [[5, -180], [10, -170]]]);
    expect(splitAtAntimeridian([])).toEqual([]);
  });
});
