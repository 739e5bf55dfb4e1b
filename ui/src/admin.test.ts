import { describe, expect, it } from "vitest";
import type { ApiKey, Login } from "./api";
import {
  actionsFor,
  displayName,
  FIRST_PAGE,
  keyState,
  loginMarkers,
  markerKind,
  nextPage,
  pageNumber,
  parseRoute,
  previousPage,
  routeHash,
  shortAgent,
  usersPath,
  verdictText,
} from "./admin";

const ID = "0b9c2a57-6f7e-4f7a-9a55-1e2f3a4b5c6d";

describe("routes", () => {
  it("reads the hash", () => {
    expect(parseRoute("")).toEqual({ view: "map" });
    expect(parseRoute("#/")).toEqual({ view: "map" });
    expect(parseRoute("#/users")).toEqual({ view: "users", q: "" });
    expect(parseRoute("#/users?q=status%3Ablocked")).toEqual({ view: "users", q: "status:blocked" });
    expect(parseRoute(`#/users/${ID.toUpperCase()}`)).toEqual({ view: "user", id: ID });
  });

  it("sends a malformed user id to the list, not to a request", () => {
    expect(parseRoute("#/users/not-an-id")).toEqual({ view: "users", q: "" });
    expect(parseRoute(`#/users/${ID}/extra`)).toEqual({ view: "users", q: "" });
  });

  it("writes what it reads", () => {
    for (const route of [{ view: "map" }, { view: "users", q: "status:blocked AND name:a*" }, { view: "users", q: "" }, { view: "user", id: ID }] as const) {
      expect(parseRoute(routeHash(route))).toEqual(route);
    }
  });
});

describe("paging", () => {
  it("goes forward by cursor and back by the cursors it kept", () => {
    const second = nextPage(FIRST_PAGE, "c2");
    const third = nextPage(second, "c3");
    expect(pageNumber(third)).toBe(3);
    expect(usersPath("", third)).toContain("cursor=c3");
    expect(previousPage(third)).toEqual(second);
    expect(previousPage(second)).toEqual(FIRST_PAGE);
    expect(usersPath("", previousPage(second))).not.toContain("cursor");
  });

  it("stays put at either end", () => {
    expect(previousPage(FIRST_PAGE)).toBe(FIRST_PAGE);
    const last = nextPage(FIRST_PAGE, "c2");
    expect(nextPage(last, null)).toBe(last);
  });

  it("sends the query as typed, trimmed, with deleted accounts", () => {
    const path = usersPath("  user_metadata.tier:free AND NOT status:blocked ", FIRST_PAGE, 10);
    const params = new URLSearchParams(path.split("?")[1]);
    expect(path.startsWith("/api/v1/users?")).toBe(true);
    expect(params.get("q")).toBe("user_metadata.tier:free AND NOT status:blocked");
    expect(params.get("limit")).toBe("10");
    expect(params.get("include_deleted")).toBe("true");
    expect(new URLSearchParams(usersPath(" ", FIRST_PAGE).split("?")[1]).has("q")).toBe(false);
  });
});

describe("accounts", () => {
  it("are named by their names, else their username", () => {
    expect(displayName({ username: "ada", given_name: "Ada", family_name: "Lovelace" })).toBe("Ada Lovelace");
    expect(displayName({ username: "ada", given_name: null, family_name: null })).toBe("ada");
    expect(displayName({ username: "ada", given_name: " ", family_name: null })).toBe("ada");
  });

  it("offer the actions their status allows", () => {
    expect(actionsFor("active")).toEqual({ block: true, unblock: false, logoutAll: true, delete: true, restore: false });
    expect(actionsFor("blocked")).toEqual({ block: false, unblock: true, logoutAll: true, delete: true, restore: false });
    expect(actionsFor("deleted")).toEqual({ block: false, unblock: false, logoutAll: false, delete: false, restore: true });
  });

  it("tell live keys from revoked and expired ones", () => {
    const key = { revoked_at: null, expires_at: null } as ApiKey;
    const now = new Date("2026-06-01T00:00:00Z");
    expect(keyState(key, now)).toBe("active");
    expect(keyState({ ...key, expires_at: "2026-05-31T23:59:59Z" }, now)).toBe("expired");
    expect(keyState({ ...key, expires_at: "2026-06-02T00:00:00Z" }, now)).toBe("active");
    expect(keyState({ ...key, revoked_at: "2026-05-01T00:00:00Z", expires_at: "2026-05-02T00:00:00Z" }, now)).toBe("revoked");
  });

  it("shorten long user agents", () => {
    expect(shortAgent(null)).toBe("unknown client");
    expect(shortAgent("curl/8")).toBe("curl/8");
    expect(shortAgent("x".repeat(100), 10)).toBe(`${"x".repeat(9)}…`);
  });
});

describe("logins", () => {
  const login = (over: Partial<Login>): Login => ({
    id: 1,
    event_uuid: "e",
    occurred_at: "2026-06-01T08:00:00Z",
    success: true,
    failure_reason: null,
    ip: "1.2.3.4",
    user_agent: null,
    source: "api",
    place: { lat: 48.85, lon: 2.35, accuracy_radius_km: 5, country_iso: "FR", subdivision_iso: "IDF", city_name: "Paris" },
    geo_reason: null,
    verdict: null,
    review: null,
    reviewed_at: null,
    ...over,
  });

  it("say their verdict and outcome", () => {
    expect(verdictText(login({ verdict: "impossible" }))).toBe("Impossible travel (signed in)");
    expect(verdictText(login({ verdict: "suspicious", success: false }))).toBe("Suspicious travel (failed)");
    expect(verdictText(login({}))).toBe("Signed in");
    expect(verdictText(login({ success: false }))).toBe("Failed sign-in");
    expect(markerKind(login({ verdict: "impossible" }))).toBe("impossible");
    expect(markerKind(login({ success: false }))).toBe("failed");
    expect(markerKind(login({ verdict: "ok" }))).toBe("ok");
  });

  it("become markers where located, the newest on top", () => {
    const tokyo = { lat: 35.68, lon: 139.76, accuracy_radius_km: 5, country_iso: "JP", subdivision_iso: "13", city_name: "Tokyo" };
    const markers = loginMarkers([login({ id: 3, place: tokyo, verdict: "impossible" }), login({ id: 2, place: null }), login({ id: 1 })]);
    expect(markers.map((m) => [m.lat, m.kind])).toEqual([
      [48.85, "ok"],
      [35.68, "impossible"],
    ]);
    expect(markers[1].title).toBe("Tokyo, Japan · Impossible travel (signed in) · 2026-06-01 08:00 UTC");
  });
});
