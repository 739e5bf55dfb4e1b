// Time-range presets → the API's `from`/`to` (UTC days, inclusive). Pure: `today` is given.

export type Preset = "1" | "7" | "30" | "90" | "all" | "custom";

export const PRESETS: { value: Preset; label: string }[] = [
  { value: "1", label: "Today (UTC)" },
  { value: "7", label: "Last 7 days" },
  { value: "30", label: "Last 30 days" },
  { value: "90", label: "Last 90 days" },
  { value: "all", label: "Everything kept" },
  { value: "custom", label: "Custom…" },
];

export interface Range {
  from?: string;
  to?: string;
}

export const isoDay = (d: Date) => d.toISOString().slice(0, 10);

export function presetRange(preset: Preset, today: Date, custom: Range = {}): Range {
  if (preset === "all") return {};
  if (preset === "custom") {
    const range: Range = {};
    if (custom.from) range.from = custom.from;
    if (custom.to) range.to = custom.to;
    return range;
  }
  const days = Number(preset);
  const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - (days - 1)));
  return { from: isoDay(first), to: isoDay(today) };
}

/** A reason the custom range cannot be used, or null. */
export function rangeProblem(range: Range): string | null {
  if (range.from && range.to && range.from > range.to) return "The first day is after the last.";
  return null;
}
