// What the map's colours mean: shared by the layers that draw them and the legend. Pure.

/** Arc colours by verdict (styles.css `.legend-arc-*` repeat them). */
export const ARC_COLOURS = { suspicious: "#e07b00", impossible: "#c0262d" } as const;

/** The legend's heading for the heat: what a spot's colour counts (a spot: the cells within
 * a few pixels of each other at this zoom). */
export function heatTitle(unit: "sign-ins" | "users"): string {
  return unit === "users" ? "Distinct users per spot" : "Sign-ins per spot";
}
