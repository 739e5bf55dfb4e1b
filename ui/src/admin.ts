// The admin console's logic: where the page is (the URL's hash), paging through users by
// cursor, and how accounts, sessions, keys and logins read. Pure.
import { queryString, type ApiKey, type Login, type User } from "./api";
import { placeName, utcMinute } from "./places";

export type Route = { view: "map" } | { view: "users"; q: string } | { view: "user"; id: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "#/users?q=…" → the users list, "#/users/<uuid>" → a user's page, anything else → the map.
 * In the hash, so a reload or the back button returns to the same place. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "");
  const [pathname, search = ""] = path.split("?", 2);
  const parts = pathname.split("/").filter(Boolean);
  if (parts[0] !== "users") return { view: "map" };
  if (parts.length === 1) return { view: "users", q: new URLSearchParams(search).get("q") ?? "" };
  if (parts.length === 2 && UUID.test(parts[1])) return { view: "user", id: parts[1].toLowerCase() };
  return { view: "users", q: "" };
}

export function routeHash(route: Route): string {
  if (route.view === "map") return "#/";
  if (route.view === "user") return `#/users/${route.id}`;
  return `#/users${queryString({ q: route.q.trim() || undefined })}`;
}

/** Where the users list is in its paging: the cursors of the pages before this one (to go
 * back: the API pages forwards only) and this page's own cursor (null: the first page). */
export interface Paging {
  previous: (string | null)[];
  current: string | null;
}

export const FIRST_PAGE: Paging = { previous: [], current: null };

export function nextPage(paging: Paging, nextCursor: string | null): Paging {
  if (nextCursor === null) return paging;
  return { previous: [...paging.previous, paging.current], current: nextCursor };
}

export function previousPage(paging: Paging): Paging {
  if (paging.previous.length === 0) return paging;
  return { previous: paging.previous.slice(0, -1), current: paging.previous[paging.previous.length - 1] };
}

/** 1 for the first page. */
export const pageNumber = (paging: Paging) => paging.previous.length + 1;

export const PAGE_SIZE = 25;

/** The users list's request: the search as typed (the API parses it), the page's cursor, and
 * deleted accounts shown too, so that one deleted here can be found and restored. */
export function usersPath(q: string, paging: Paging, size = PAGE_SIZE): string {
  return `/api/v1/users${queryString({ q: q.trim() || undefined, cursor: paging.current ?? undefined, limit: size, include_deleted: "true" })}`;
}

/** "Ada Lovelace" or, without names, the username. */
export function displayName(user: Pick<User, "username" | "given_name" | "family_name">): string {
  const name = [user.given_name, user.family_name].filter(Boolean).join(" ").trim();
  return name || user.username;
}

export const STATUS_TEXT: Record<string, string> = { active: "Active", blocked: "Blocked", deleted: "Deleted" };

export const statusText = (status: string) => STATUS_TEXT[status] ?? status;

export const when = (iso: string | null | undefined, never = "never") => (iso ? utcMinute(iso) : never);

/** Which actions the account's status allows: a deleted account can only be restored. */
export function actionsFor(status: string): { block: boolean; unblock: boolean; logoutAll: boolean; delete: boolean; restore: boolean } {
  const deleted = status === "deleted";
  return { block: status === "active", unblock: status === "blocked", logoutAll: !deleted, delete: !deleted, restore: deleted };
}

export function keyState(key: ApiKey, now: Date): "revoked" | "expired" | "active" {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && new Date(key.expires_at).getTime() <= now.getTime()) return "expired";
  return "active";
}

/** What a login's verdict says, for people. */
export function verdictText(login: Pick<Login, "verdict" | "success">): string {
  const outcome = login.success ? "signed in" : "failed";
  if (login.verdict === "impossible") return `Impossible travel (${outcome})`;
  if (login.verdict === "suspicious") return `Suspicious travel (${outcome})`;
  return login.success ? "Signed in" : "Failed sign-in";
}

/** The map's class for a login's marker: its verdict, else its outcome. */
export function markerKind(login: Pick<Login, "verdict" | "success">): "impossible" | "suspicious" | "ok" | "failed" {
  if (login.verdict === "impossible" || login.verdict === "suspicious") return login.verdict;
  return login.success ? "ok" : "failed";
}

export const MARKER_COLOURS: Record<ReturnType<typeof markerKind>, string> = {
  impossible: "#c0262d",
  suspicious: "#e07b00",
  ok: "#2b8a3e",
  failed: "#5c6b78",
};

export interface LoginMarker {
  lat: number;
  lon: number;
  kind: ReturnType<typeof markerKind>;
  title: string;
}

/** A marker per located login, the newest drawn last (on top). */
export function loginMarkers(logins: Login[]): LoginMarker[] {
  return logins
    .filter((l) => l.place !== null)
    .map((l) => ({
      lat: l.place!.lat,
      lon: l.place!.lon,
      kind: markerKind(l),
      title: `${placeName(l.place)} · ${verdictText(l)} · ${utcMinute(l.occurred_at)}`,
    }))
    .reverse();
}

/** "Chrome on Linux"-ish detail is beyond us: the agent cut to a readable length. */
export function shortAgent(agent: string | null, max = 60): string {
  if (!agent) return "unknown client";
  return agent.length > max ? `${agent.slice(0, max - 1)}…` : agent;
}
