// Places and journeys for people: names rather than codes where the browser knows them
// (country names come with the browser's own locale data: nothing is fetched). Pure.

export interface NamedPlace {
  city_name: string | null;
  subdivision_iso?: string | null;
  /** The region's name, where the API gives one (GeoIP knows it; the rollups keep codes). */
  subdivision_name?: string | null;
  country_iso: string | null;
}

const countries = new Intl.DisplayNames(["en"], { type: "region", fallback: "code" });

/** "France" for FR; the code itself when the browser has no name for it. */
export function countryName(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const code = iso.toUpperCase();
  try {
    return countries.of(code) ?? code;
  } catch {
    return code; // not a well-formed region code
  }
}

/** City, region code and country code: "Paris, IDF, FR" (what the API keys on). */
export function placeCodes(place: NamedPlace | null | undefined): string {
  if (!place) return "unknown place";
  const parts = [place.city_name, place.subdivision_iso, place.country_iso].filter(Boolean);
  return parts.length ? parts.join(", ") : "unknown place";
}

/** City, region and country by name: "Edogawa, Tokyo, Japan". A region is named only when
 * its name is known: a bare region code ("13") means nothing to a reader, so without the name
 * the place is "Edogawa, Japan". */
export function placeName(place: NamedPlace | null | undefined): string {
  if (!place) return "unknown place";
  const parts = [place.city_name, place.subdivision_name, countryName(place.country_iso)].filter(
    (part, i, all): part is string => Boolean(part) && part !== all[i - 1],
  );
  // A city that names its own region (Tokyo in Tokyo) is said once: "Tokyo, Japan".
  return parts.length ? parts.join(", ") : "unknown place";
}

export type PlaceLevel = "city" | "region" | "country";

/** A top-10 row's name at its level. A region whose name is unknown keeps its code, said as a
 * region of its country ("Region 13, Japan"): the code is then the only name there is. */
export function levelName(level: PlaceLevel, place: NamedPlace & { label?: string }): string {
  if (level === "country") return countryName(place.country_iso) ?? place.label ?? "unknown country";
  if (level === "region") {
    const country = countryName(place.country_iso);
    const region = place.subdivision_name ?? (place.subdivision_iso ? `Region ${place.subdivision_iso}` : null);
    const parts = [region, country].filter(Boolean);
    return parts.length ? parts.join(", ") : (place.label ?? "unknown region");
  }
  const name = placeName(place);
  return name === "unknown place" && place.label ? place.label : name;
}

export function journeyName(from: NamedPlace | null | undefined, to: NamedPlace | null | undefined): string {
  return `${placeName(from)} → ${placeName(to)}`;
}

const whole = (n: number) => Math.round(n).toLocaleString("en-US");

/** "5,391 mph (8,676 km/h)"; km/h worked out from mph when not given. */
export function speed(mph: number | null | undefined, kmh?: number | null): string {
  if (mph == null || !Number.isFinite(mph)) return "speed unknown";
  return `${whole(mph)} mph (${whole(kmh ?? mph * 1.609344)} km/h)`;
}

/** "2026-06-01 08:00 UTC": one clock for every admin, whatever their time zone. */
export function utcMinute(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The shortest name that still tells the top-10's bars apart: a city alone (its country is in
 * the list below the chart), else the name at its level. */
export function shortName(level: PlaceLevel, place: NamedPlace & { label?: string }): string {
  return level === "city" && place.city_name ? place.city_name : levelName(level, place);
}
