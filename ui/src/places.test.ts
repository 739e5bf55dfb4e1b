import { describe, expect, it } from "vitest";
import { countryName, journeyName, levelName, placeCodes, placeName, shortName, speed, utcMinute } from "./places";

const paris = { city_name: "Paris", subdivision_iso: "IDF", country_iso: "FR" };
const tokyo = { city_name: "Tokyo", subdivision_iso: "13", country_iso: "JP" };
const edogawa = { city_name: "Edogawa", subdivision_iso: "13", country_iso: "JP" };

describe("places", () => {
  it("names countries from their codes, keeping codes it cannot name", () => {
    expect(countryName("FR")).toBe("France");
    expect(countryName("jp")).toBe("Japan");
    expect(countryName("XX")).toBe("XX");
    expect(countryName("not a code")).toBe("NOT A CODE");
    expect(countryName(null)).toBeNull();
  });

  it("spells a place by codes and by name", () => {
    expect(placeCodes(paris)).toBe("Paris, IDF, FR");
    expect(placeName(paris)).toBe("Paris, France");
    expect(placeName({ ...edogawa, subdivision_name: "Tokyo" })).toBe("Edogawa, Tokyo, Japan");
    expect(placeName(edogawa)).toBe("Edogawa, Japan");
    expect(placeName({ ...edogawa, city_name: "Tokyo", subdivision_name: "Tokyo" })).toBe("Tokyo, Japan");
    expect(placeName({ city_name: null, subdivision_iso: null, country_iso: "US" })).toBe("United States");
    expect(placeName({ city_name: null, country_iso: null })).toBe("unknown place");
    expect(placeCodes(null)).toBe("unknown place");
  });

  it("names a journey's two ends", () => {
    expect(journeyName(paris, tokyo)).toBe("Paris, France → Tokyo, Japan");
    expect(journeyName(null, tokyo)).toBe("unknown place → Tokyo, Japan");
  });

  it("names top-10 rows at their level, never by bare codes", () => {
    const row = { ...edogawa, label: "Edogawa, 13, JP" };
    expect(levelName("city", row)).toBe("Edogawa, Japan");
    expect(levelName("city", { ...row, subdivision_name: "Tokyo" })).toBe("Edogawa, Tokyo, Japan");
    expect(levelName("region", { city_name: null, subdivision_iso: "13", country_iso: "JP", label: "JP-13" })).toBe("Region 13, Japan");
    expect(levelName("region", { city_name: null, subdivision_iso: "13", subdivision_name: "Tokyo", country_iso: "JP" })).toBe("Tokyo, Japan");
    expect(levelName("region", { city_name: null, subdivision_iso: null, country_iso: null, label: "?? (region 5)" })).toBe("?? (region 5)");
    expect(levelName("country", { city_name: null, country_iso: "US", label: "US" })).toBe("United States");
    expect(levelName("city", { city_name: null, country_iso: null, label: "place 42" })).toBe("place 42");
    expect(shortName("city", row)).toBe("Edogawa");
    expect(shortName("country", { city_name: null, country_iso: "JP" })).toBe("Japan");
    expect(shortName("city", { city_name: null, country_iso: null, label: "place 42" })).toBe("place 42");
  });

  it("gives speeds in mph and km/h", () => {
    expect(speed(6034.5, 9711.6)).toBe("6,035 mph (9,712 km/h)");
    expect(speed(500)).toBe("500 mph (805 km/h)");
    expect(speed(null)).toBe("speed unknown");
  });

  it("gives times on the UTC clock", () => {
    expect(utcMinute("2026-06-01T08:00:59+02:00")).toBe("2026-06-01 06:00 UTC");
    expect(utcMinute("soon")).toBe("soon");
  });
});
