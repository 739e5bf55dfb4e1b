// Places and journeys for people: names rather than codes where the browser knows them
// (country names come with the browser's own locale data: nothing is fetched). Pure.

export interface NamedPlace {
  city_name: string | null;
  subdivision_iso?: string | null;
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

/** City, region code and the country's name: "Paris, IDF, France". Regions keep their code:
 * the API has no region names. */
export function placeName(place: NamedPlace | null | undefined): string {
  if (!place) return "unknown place";
  const parts = [place.city_name, place.subdivision_iso, countryName(place.country_iso)].filter(Boolean);
  return parts.length ? parts.join(", ") : "unknown place";
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
