// The analytics API: query strings, responses, problem details, and an authenticated fetch.

export type Outcome = "any" | "success" | "failure";
export type Level = "city" | "region" | "country";

export interface Filters {
  from?: string;
  to?: string;
  outcome: Outcome;
  q: string;
  by: "events" | "users";
  basis: "all" | "last_login";
}

export interface Heatmap {
  cells: [number, number, number][];
  cell_deg: number;
  by: string;
  basis: string;
  max_weight: number;
  total_weight: number;
}

export interface PlaceCount {
  geoname_id: number;
  label: string;
  country_iso: string | null;
  subdivision_iso: string | null;
  city_name: string | null;
  lat: number | null;
  lon: number | null;
  count: number;
  share: number;
  last_seen_at: string | null;
}

/** A top-10 place with the level it was listed at (which decides how it is named). */
export type LeveledPlace = PlaceCount & { level: Level };

export interface TopLocations {
  level: Level;
  total: number;
  items: PlaceCount[];
}

export interface JourneyEnd {
  lat: number;
  lon: number;
  city_name: string | null;
  subdivision_iso: string | null;
  country_iso: string | null;
}

export interface Journey {
  event_uuid: string;
  subject: string;
  occurred_at: string;
  verdict: "suspicious" | "impossible";
  origin: JourneyEnd;
  destination: JourneyEnd;
  distance_km: number;
  elapsed_seconds: number;
  speed_mph: number;
}

export type Review = "safe" | "compromised";

export interface LoginPlace extends JourneyEnd {
  event_uuid: string | null;
  accuracy_radius_km: number | null;
}

/** A suspicious or impossible login, with the journey that earned the grade. */
export interface FlaggedLogin {
  id: number;
  event_uuid: string;
  occurred_at: string;
  source: string;
  subject: string;
  user_id: string | null;
  username: string | null;
  success: boolean;
  verdict: "suspicious" | "impossible";
  review: Review | null;
  reviewed_at: string | null;
  origin: LoginPlace | null;
  destination: LoginPlace | null;
  distance_km: number | null;
  elapsed_seconds: number | null;
  speed_mph: number | null;
  speed_kmh: number | null;
}

export interface FlaggedPage {
  items: FlaggedLogin[];
  next_before: number | null;
}

/** What `POST /logins/{id}/review` answers: the login as it now stands. */
export interface ReviewedLogin {
  id: number;
  verdict: string | null;
  review: Review;
  reviewed_at: string;
}

/** An account as `GET /api/v1/users*` answers it. */
export interface User {
  id: string;
  username: string;
  email: string | null;
  email_verified: boolean;
  given_name: string | null;
  family_name: string | null;
  user_metadata: Record<string, unknown>;
  app_metadata: Record<string, unknown>;
  roles: string[];
  status: "active" | "blocked" | "deleted" | string;
  password_reset_required: boolean;
  logins_count: number;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface UserPage {
  items: User[];
  next_cursor: string | null;
}

export interface UserSession {
  id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

export interface ApiKey {
  id: string;
  key_id: string;
  name: string;
  scopes: string[];
  user_id: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** One sign-in attempt of an account's history (`GET /api/v1/users/{id}/logins`). */
export interface Login {
  id: number;
  event_uuid: string;
  occurred_at: string;
  success: boolean;
  failure_reason: string | null;
  ip: string | null;
  user_agent: string | null;
  source: string;
  place: {
    lat: number;
    lon: number;
    accuracy_radius_km: number | null;
    country_iso: string | null;
    subdivision_iso: string | null;
    subdivision_name?: string | null;
    city_name: string | null;
  } | null;
  geo_reason: string | null;
  verdict: string | null;
  review: Review | null;
  reviewed_at: string | null;
}

export interface LoginPage {
  items: Login[];
  next_before: number | null;
}

export interface RoleRead {
  id: string;
  name: string;
  builtin?: boolean;
}

export interface Problem {
  status: number;
  code: string;
  detail: string;
  parameter?: string;
  position?: number;
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

/** A sign-in held back for a second factor: complete it with `Client.verifyMfa`. */
export class MfaRequired extends Error {
  constructor(
    readonly mfaToken: string,
    readonly methods: string[],
    readonly expiresIn: number,
  ) {
    super("a second factor is required");
  }
}

/** The `mfa_required` answer of a sign-in, or null for any other. */
export function mfaChallenge(status: number, body: unknown): MfaRequired | null {
  if (status !== 401 || !body || typeof body !== "object") return null;
  const b = body as Record<string, unknown>;
  if (b.code !== "mfa_required" || typeof b.mfa_token !== "string") return null;
  const methods = Array.isArray(b.mfa_methods) ? b.mfa_methods.filter((m): m is string => typeof m === "string") : [];
  return new MfaRequired(b.mfa_token, methods, typeof b.expires_in === "number" ? b.expires_in : 300);
}

/** POST a JSON body with no credential (the emailed pages: the token in the body is the
 * proof). Answers the body, null for 204; throws ApiError. */
export async function postPublic<T>(path: string, body: unknown): Promise<T | null> {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(toProblem(response.status, answer));
  return answer as T | null;
}

/** The filters as query parameters; defaults are left out so URLs stay short. */
export function filterParams(filters: Filters): Record<string, string> {
  const params: Record<string, string> = {};
  if (filters.from) params.from = filters.from;
  if (filters.to) params.to = filters.to;
  if (filters.outcome !== "any") params.outcome = filters.outcome;
  if (filters.q.trim()) params.q = filters.q.trim();
  if (filters.by !== "events") params.by = filters.by;
  if (filters.basis !== "all") params.basis = filters.basis;
  return params;
}

export function queryString(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A problem body (RFC 9457) or, for anything else, one built from the status. */
export function toProblem(status: number, body: unknown): Problem {
  if (body && typeof body === "object" && "detail" in body) {
    const b = body as Record<string, unknown>;
    return {
      status,
      code: typeof b.code === "string" ? b.code : "error",
      detail: String(b.detail),
      parameter: typeof b.parameter === "string" ? b.parameter : undefined,
      position: typeof b.position === "number" ? b.position : undefined,
    };
  }
  return { status, code: "error", detail: `The server answered ${status}.` };
}

/** Is this problem about the search query (shown under the filter box)? */
export const isQueryProblem = (p: Problem) => p.code === "invalid_query" || p.parameter === "q";

export interface Session {
  access_token: string;
  refresh_token?: string;
}

type SessionStore = { get(): Session | null; set(s: Session | null): void };

export class Client {
  constructor(
    private readonly store: SessionStore,
    private readonly onSignedOut: () => void,
  ) {}

  async signIn(username: string, password: string): Promise<void> {
    const response = await fetch("/api/v1/auth/signin", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await response.json().catch(() => null);
    const challenge = mfaChallenge(response.status, body);
    if (challenge) throw challenge;
    if (!response.ok) throw new ApiError(toProblem(response.status, body));
    this.store.set({ access_token: body.access_token, refresh_token: body.refresh_token });
  }

  /** Complete a held-back sign-in with a code (authenticator, recovery or emailed). */
  async verifyMfa(mfaToken: string, code: string): Promise<void> {
    const body = await postPublic<Session>("/api/v1/auth/mfa/verify", { mfa_token: mfaToken, code });
    if (!body) throw new ApiError({ status: 204, code: "error", detail: "The server answered without a session." });
    this.store.set({ access_token: body.access_token, refresh_token: body.refresh_token });
  }

  signOut(): void {
    const session = this.store.get();
    this.store.set(null);
    if (session) {
      void fetch("/api/v1/auth/logout", {
        method: "POST",
        headers: { Authorization: `Bearer ${session.access_token}` },
      }).catch(() => undefined);
    }
  }

  /** GET with the bearer token; one refresh when it expired (tokens last 15 minutes). */
  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>(path, { signal });
  }

  /** POST a JSON body (or none) with the bearer token, refreshed as for `get`. */
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
  }

  /** DELETE with the bearer token; a 204 answers null. */
  delete<T = null>(path: string): Promise<T> {
    return this.request<T>(path, { method: "DELETE" });
  }

  private async request<T>(path: string, init: RequestInit): Promise<T> {
    let response = await this.send(path, init);
    if (response.status === 401 && (await this.refresh())) response = await this.send(path, init);
    const body = await response.json().catch(() => null);
    if (response.status === 401) {
      this.store.set(null);
      this.onSignedOut();
    }
    if (!response.ok) throw new ApiError(toProblem(response.status, body));
    return body as T;
  }

  private send(path: string, init: RequestInit): Promise<Response> {
    const session = this.store.get();
    const headers: Record<string, string> = session ? { Authorization: `Bearer ${session.access_token}` } : {};
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, { ...init, headers });
  }

  private async refresh(): Promise<boolean> {
    const session = this.store.get();
    if (!session?.refresh_token) return false;
    const response = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    });
    if (!response.ok) return false;
    const body = await response.json();
    this.store.set({ access_token: body.access_token, refresh_token: body.refresh_token });
    return true;
  }
}

/** The session lives in sessionStorage: it ends with the tab, and no other site can read it. */
export const sessionStore: SessionStore = {
  get() {
    const text = sessionStorage.getItem("globeguard.session");
    return text ? (JSON.parse(text) as Session) : null;
  },
  set(session) {
    if (session) sessionStorage.setItem("globeguard.session", JSON.stringify(session));
    else sessionStorage.removeItem("globeguard.session");
  },
};
