import { count } from "./format";
import type { LegendTick } from "./heat";
import { heatTitle } from "./legend";

interface Props {
  unit: "sign-ins" | "users";
  /** Empty while the heat is loading, failed or has no cells: the ramp is then unlabelled. */
  ticks: LegendTick[];
  arcs: boolean;
}

/** What the heat's colours count (log scale, up to the busiest cell in view) and what the
 * arcs' colours mean. */
export function MapLegend({ unit, ticks, arcs }: Props) {
  return (
    <aside className="legend" aria-label="Map legend" data-testid="legend">
      <p className="legend-title">{heatTitle(unit)}</p>
      <div className="legend-ramp" aria-hidden="true" />
      {ticks.length > 0 && (
        <ol className="legend-ticks" aria-label="Colour scale, cold to hot">
          {ticks.map((t) => (
            <li key={t.value} style={{ left: `${(t.at * 100).toFixed(1)}%` }}>
              {count(t.value)}
            </li>
          ))}
        </ol>
      )}
      <p className="legend-note">Log scale; red is the busiest spot in view.</p>
      {arcs && (
        <ul className="legend-arcs" aria-label="Travel arcs">
          <li>
            <span className="legend-arc legend-arc-suspicious" aria-hidden="true" />
            Suspicious travel
          </li>
          <li>
            <span className="legend-arc legend-arc-impossible" aria-hidden="true" />
            Impossible travel
          </li>
        </ul>
      )}
    </aside>
  );
}
