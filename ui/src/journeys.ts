// A flagged journey as the map's popups and the flagged list tell it. Pure.
import { distance, duration, escapeHtml } from "./format";
import { journeyName, speed, utcMinute, type NamedPlace } from "./places";

/** What an arc (analytics) and a flagged login (the list) both say of a journey. */
export interface JourneyView {
  verdict: string;
  subject: string;
  username?: string | null;
  occurred_at: string;
  origin: NamedPlace | null;
  destination: NamedPlace | null;
  distance_km: number | null;
  elapsed_seconds: number | null;
  speed_mph: number | null;
  speed_kmh?: number | null;
}

export const verdictTitle = (verdict: string) => (verdict === "impossible" ? "Impossible" : "Suspicious");

/** "9,712 km in 60 min: 6,035 mph (9,712 km/h)"; the parts a verdict did not measure left out. */
export function journeyFigures(j: JourneyView): string {
  const parts = [];
  if (j.distance_km != null) parts.push(distance(j.distance_km));
  if (j.elapsed_seconds != null) parts.push(`in ${duration(j.elapsed_seconds)}`);
  const measured = parts.join(" ");
  const fast = j.speed_mph != null ? speed(j.speed_mph, j.speed_kmh) : "";
  return [measured, fast].filter(Boolean).join(": ") || "not measured";
}

/** The popup of an arc: HTML, every name from the server escaped. */
export function journeyPopup(j: JourneyView): string {
  const who = j.username ? `${j.username} (${j.subject})` : j.subject;
  return (
    `<div class="popup" data-testid="journey-popup"><strong>${verdictTitle(j.verdict)} journey</strong>` +
    `<p class="journey-places">${escapeHtml(journeyName(j.origin, j.destination))}</p>` +
    `<p>${escapeHtml(journeyFigures(j))}</p>` +
    `<p class="muted">${escapeHtml(who)} · ${escapeHtml(utcMinute(j.occurred_at))}</p></div>`
  );
}
