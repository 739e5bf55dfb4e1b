import { describe, expect, it } from "vitest";
import { binSpots, intensity, legendTicks, MIN_INTENSITY, nice, visibleMax, weightAt } from "./heat";

describe("heat intensity", () => {
  it("makes the busiest cell in view the hottest, whatever its count", () => {
    expect(intensity(50_000, 50_000)).toBe(1);
    expect(intensity(7, 7)).toBe(1);
    expect(intensity(3, 7)).toBeLessThan(1);
  });

  it("keeps a small place visible beside a huge one, and ranks them", () => {
    const small = intensity(10, 100_000);
    const middle = intensity(1_000, 100_000);
    expect(small).toBeGreaterThan(0.15);
    expect(middle).toBeGreaterThan(small);
    expect(intensity(1, 100_000)).toBe(MIN_INTENSITY);
  });

  it("draws nothing for an empty cell", () => {
    expect(intensity(0, 10)).toBe(0);
    expect(intensity(1, 1)).toBe(1);
  });

  it("takes its maximum from the cells given", () => {
    expect(visibleMax([[1, 2, 3], [4, 5, 40], [6, 7, 9]])).toBe(40);
    expect(visibleMax([])).toBe(0);
  });

  it("inverts for the legend", () => {
    for (const w of [2, 17, 999]) expect(weightAt(intensity(w, 1_000), 1_000)).toBeCloseTo(w);
  });
});

describe("legend ticks", () => {
  it("run from 1 to the busiest cell, increasing", () => {
    const ticks = legendTicks(10_000);
    expect(ticks[0]).toEqual({ at: 0, value: 1 });
    expect(ticks.at(-1)).toEqual({ at: 1, value: 10_000 });
    expect(ticks.map((t) => t.value)).toEqual([1, 9, 100, 1_000, 10_000]);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i].at).toBeGreaterThan(ticks[i - 1].at);
  });

  it("do not repeat a count on a small scale", () => {
    expect(legendTicks(2).map((t) => t.value)).toEqual([1, 2]);
    expect(legendTicks(1)).toEqual([{ at: 1, value: 1 }]);
    expect(legendTicks(0)).toEqual([]);
  });

  it("are round numbers", () => {
    expect(nice(1234)).toBe(1000);
    expect(nice(1600)).toBe(1500);
    expect(nice(37)).toBe(35);
    expect(nice(3.4)).toBe(3);
    expect(nice(0.2)).toBe(1);
  });
});

describe("spots on the screen", () => {
  it("sum the cells that fall into one square, at their weighted centre", () => {
    const spots = binSpots(
      [
        { x: 1, y: 1, weight: 1 },
        { x: 9, y: 9, weight: 3 },
        { x: 25, y: 1, weight: 5 },
        { x: 5, y: 5, weight: 0 },
      ],
      16,
    );
    expect(spots).toEqual([
      { x: 7, y: 7, weight: 4 },
      { x: 25, y: 1, weight: 5 },
    ]);
  });

  it("keep the total, so the busiest spot is what the legend's top count says", () => {
    const cells = Array.from({ length: 50 }, (_, i) => ({ x: (i * 7) % 100, y: (i * 13) % 60, weight: i + 1 }));
    const spots = binSpots(cells, 16);
    expect(spots.reduce((sum, s) => sum + s.weight, 0)).toBe(cells.reduce((sum, s) => sum + s.weight, 0));
    expect(spots.length).toBeLessThan(cells.length);
  });
});
