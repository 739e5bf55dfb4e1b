// What the map's colours mean: shared by the layers that draw them and the legend. Pure.

/** Arc colours by verdict (styles.css `.legend-arc-*` repeat them). */
export const ARC_COLOURS = { suspicious: "#e07b00", impossible: "#c0262d" } as const;

/** The legend's heading for the heat: what one cell's count counts. */
export function heatTitle(unit: "sign-ins" | "users"): string {
  return unit === "users" ? "Distinct users per cell" : "Sign-ins per cell";
}
