// How the heatmap's cells become colours, and what the legend says those colours mean. Pure.
//
// Cell weights span orders of magnitude (a capital with 50,000 sign-ins beside a town with 3),
// so intensities are log-scaled, and against the largest cell in view: zoomed into a quiet
// region, its busiest place is still the hottest colour instead of a faint blue.

/** The colour ramp of the heat layer (simpleheat's stops) and of its legend (styles.css
 * `.legend-ramp` repeats these colours: change both). */
export const HEAT_GRADIENT: Record<number, string> = {
  0.2: "#2c7bb6",
  0.45: "#00a6ca",
  0.65: "#90eb9d",
  0.8: "#f9d057",
  0.9: "#f29e2e",
  1: "#d7191c",
};

/** The least intensity a non-empty cell is drawn with: a single sign-in stays visible. */
export const MIN_INTENSITY = 0.08;

/** The largest weight among the cells in view (0 when none). */
export function visibleMax(cells: readonly (readonly [number, number, number])[]): number {
  let max = 0;
  for (const [, , w] of cells) if (w > max) max = w;
  return max;
}

/** Intensity of a cell in (0, 1]: log1p(weight) / log1p(max); 0 for an empty cell. */
export function intensity(weight: number, max: number): number {
  if (weight <= 0) return 0;
  if (max <= 1 || weight >= max) return 1;
  return Math.max(MIN_INTENSITY, Math.log1p(weight) / Math.log1p(max));
}

/** The weight drawn at a given intensity: the inverse of `intensity`, for the legend. */
export function weightAt(level: number, max: number): number {
  if (max <= 1) return max;
  return Math.expm1(level * Math.log1p(max));
}

export interface LegendTick {
  /** Where on the ramp, 0 to 1. */
  at: number;
  value: number;
}

/** Counts to write under the ramp: 1 at the cold end, the busiest cell in view at the hot end,
 * and the (rounded, distinct) counts a quarter, half and three quarters of the way up. */
export function legendTicks(max: number): LegendTick[] {
  if (max <= 0) return [];
  if (max === 1) return [{ at: 1, value: 1 }];
  const ticks: LegendTick[] = [{ at: 0, value: 1 }];
  for (const at of [0.25, 0.5, 0.75]) {
    const value = nice(weightAt(at, max));
    if (value > ticks[ticks.length - 1].value && value < max) ticks.push({ at: Math.log1p(value) / Math.log1p(max), value });
  }
  ticks.push({ at: 1, value: max });
  return ticks;
}

/** Rounded to one or two significant figures (3, 25, 1,200), never below 1. */
export function nice(value: number): number {
  if (value < 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = value >= 10 ? magnitude / 2 : magnitude;
  return Math.max(1, Math.round(value / step) * step);
}

/** A point on the screen (pixels) with its weight. */
export interface Spot {
  x: number;
  y: number;
  weight: number;
}

/** The cells gathered into squares of `size` pixels, weights summed, each square at its
 * weighted centre. leaflet.heat adds up whatever falls into one of its squares (radius + blur,
 * halved) before colouring: zoomed out, dozens of small cells landed in one and every busy
 * region turned the same red. Summed here first, the colours are scaled against what is
 * really drawn, so the busiest spots stay the only red ones at every zoom. */
export function binSpots(spots: readonly Spot[], size: number): Spot[] {
  const bins = new Map<string, { x: number; y: number; weight: number }>();
  for (const s of spots) {
    if (s.weight <= 0) continue;
    const key = `${Math.floor(s.x / size)},${Math.floor(s.y / size)}`;
    const bin = bins.get(key);
    if (bin) {
      bin.x += s.x * s.weight;
      bin.y += s.y * s.weight;
      bin.weight += s.weight;
    } else {
      bins.set(key, { x: s.x * s.weight, y: s.y * s.weight, weight: s.weight });
    }
  }
  return [...bins.values()].map((b) => ({ x: b.x / b.weight, y: b.y / b.weight, weight: b.weight }));
}
