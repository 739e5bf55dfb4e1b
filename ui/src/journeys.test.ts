import { describe, expect, it } from "vitest";
import { journeyFigures, journeyPopup, type JourneyView } from "./journeys";

const trip: JourneyView = {
  verdict: "impossible",
  subject: "ext-7@idp",
  occurred_at: "2026-06-01T09:00:00Z",
  origin: { city_name: "Paris", subdivision_iso: "IDF", country_iso: "FR" },
  destination: { city_name: "Tokyo", subdivision_iso: "13", country_iso: "JP" },
  distance_km: 9711.6,
  elapsed_seconds: 3600,
  speed_mph: 6034.5,
  speed_kmh: 9711.6,
};

describe("journeys", () => {
  it("states distance, time and both speeds", () => {
    expect(journeyFigures(trip)).toBe("9,712 km in 60 min: 6,035 mph (9,712 km/h)");
    expect(journeyFigures({ ...trip, distance_km: null, elapsed_seconds: null, speed_mph: null })).toBe("not measured");
  });

  it("names both places in the popup, and who travelled", () => {
    const html = journeyPopup({ ...trip, username: "alice" });
    expect(html).toContain("Impossible journey");
    expect(html).toContain("Paris, France → Tokyo, Japan");
    expect(html).toContain("alice (ext-7@idp) · 2026-06-01 09:00 UTC");
  });

  it("escapes what the server sends", () => {
    const html = journeyPopup({ ...trip, subject: "<img src=x>", origin: { city_name: "A&B", country_iso: null } });
    expect(html).toContain("&lt;img src=x&gt;");
    expect(html).toContain("A&amp;B");
    expect(html).not.toContain("<img");
  });
});
