import { useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError, queryString, type ApiKey, type Client, type Login, type LoginPage, type RoleRead, type User, type UserSession } from "./api";
import { actionsFor, displayName, keyState, routeHash, shortAgent, statusText, verdictText, when } from "./admin";
import { LoginMap } from "./LoginMap";
import { placeName } from "./places";

interface Props {
  client: Client;
  id: string;
}

/** What the page may do to the account; the destructive ones are asked first. */
type Action = "block" | "unblock" | "logout-all" | "delete" | "restore" | "reset-mfa" | { revoke: ApiKey } | { assign: string } | { unassign: string };

const LOGINS = 50;

const problemText = (e: unknown) => (e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");

/** A user's second factor, as `GET /api/v1/users/{id}/mfa` answers it (no secrets). */
interface MfaStatus {
  totp: { enrolled: boolean; pending: boolean; confirmed_at: string | null };
  recovery_codes_left: number;
}

const mfaText = (mfa: MfaStatus | null) =>
  mfa === null ? "unknown" : mfa.totp.enrolled ? `on (authenticator app, ${mfa.recovery_codes_left} recovery codes left)` : mfa.totp.pending ? "off (an enrolment was started, not confirmed)" : "off";

const QUESTIONS: Record<"block" | "logout-all" | "delete" | "reset-mfa", { ask: (who: string) => string; yes: string }> = {
  block: { ask: (who) => `Block ${who}? Their sessions and tokens stop working and they cannot sign in until unblocked.`, yes: "Yes, block" },
  "logout-all": { ask: (who) => `Sign ${who} out everywhere? Every session and access token ends at once.`, yes: "Yes, log out everywhere" },
  "reset-mfa": { ask: (who) => `Reset MFA for ${who}? Their authenticator app and recovery codes stop working at once; they can set up a new one once signed in.`, yes: "Yes, reset MFA" },
  delete: { ask: (who) => `Delete ${who}? Sign-in and every credential stop at once and API keys are revoked for good; the account can be restored.`, yes: "Yes, delete" },
};

/** One account: profile, roles, keys, sessions and where it signed in, with the admin's
 * actions on it. */
export function UserPage({ client, id }: Props) {
  const [user, setUser] = useState<User | null>(null);
  const [sessions, setSessions] = useState<UserSession[]>([]);
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [logins, setLogins] = useState<Login[]>([]);
  const [olderThan, setOlderThan] = useState<number | null>(null);
  const [roles, setRoles] = useState<RoleRead[]>([]);
  const [mfa, setMfa] = useState<MfaStatus | null>(null);
  const [status, setStatus] = useState<"loading" | "ready" | "error">("loading");
  // One message for the page: the last thing that failed.
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<"block" | "logout-all" | "delete" | "reset-mfa" | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [withKeys, setWithKeys] = useState(false);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);
  // After a question is answered or an action done, the focus returns to the actions (the
  // button pressed may be gone: Block becomes Unblock).
  const actions = useRef<HTMLDivElement>(null);
  const settle = useRef(false);
  useEffect(() => {
    if (confirming === null && !busy && settle.current) {
      settle.current = false;
      actions.current?.querySelector<HTMLButtonElement>("button:not(:disabled)")?.focus();
    }
  }, [confirming, busy, user]);

  useEffect(() => {
    const controller = new AbortController();
    const get = <T,>(path: string) => client.get<T>(path, controller.signal);
    setStatus((s) => (reload === 0 ? "loading" : s));
    Promise.all([
      get<User>(`/api/v1/users/${id}`),
      get<UserSession[]>(`/api/v1/users/${id}/sessions`),
      get<ApiKey[]>(`/api/v1/api-keys${queryString({ user_id: id })}`),
      get<LoginPage>(`/api/v1/users/${id}/logins${queryString({ limit: LOGINS })}`),
      // Unknown (not an error of the page) when it cannot be read.
      get<MfaStatus>(`/api/v1/users/${id}/mfa`).catch(() => null),
    ])
      .then(([u, s, k, l, m]) => {
        setUser(u);
        setMfa(m);
        setSessions(s);
        setKeys(k);
        setLogins(l.items);
        setOlderThan(l.next_before);
        setStatus("ready");
      })
      .catch((e) => {
        if (controller.signal.aborted) return;
        setStatus("error");
        setError(problemText(e));
      });
    return () => controller.abort();
  }, [client, id, reload]);

  // The roles one may hand out (a failure only hides the picker: no role is offered).
  useEffect(() => {
    client.get<RoleRead[]>("/api/v1/roles").then(setRoles, () => setRoles([]));
  }, [client]);

  async function act(action: Action) {
    if (!user) return;
    settle.current = typeof action === "string";
    setBusy(true);
    setError(null);
    setDone(null);
    const base = `/api/v1/users/${user.id}`;
    try {
      if (action === "block" || action === "unblock" || action === "restore") {
        setUser(await client.post<User>(`${base}/${action}`));
        setDone({ block: "Blocked.", unblock: "Unblocked.", restore: "Restored." }[action]);
      } else if (action === "logout-all") {
        const ended = await client.post<{ sessions_revoked: number; api_keys_revoked: number }>(`${base}/logout-all`, { include_api_keys: withKeys });
        setDone(`Logged out everywhere: ${ended.sessions_revoked} sessions ended${withKeys ? `, ${ended.api_keys_revoked} API keys revoked` : ""}.`);
      } else if (action === "reset-mfa") {
        await client.delete(`${base}/mfa`);
        setDone("MFA reset: the authenticator and recovery codes were removed.");
      } else if (action === "delete") {
        await client.delete(base);
        setDone("Deleted. Restore brings the account back.");
      } else if ("revoke" in action) {
        await client.delete(`/api/v1/api-keys/${action.revoke.id}`);
        setDone(`Key ${action.revoke.name} revoked.`);
      } else if ("assign" in action) {
        setUser(await client.post<User>(`${base}/roles`, { role: action.assign }));
        setDone(`Role ${action.assign} given.`);
      } else {
        setUser(await client.delete<User>(`${base}/roles/${encodeURIComponent(action.unassign)}`));
        setDone(`Role ${action.unassign} taken away.`);
      }
      setConfirming(null);
      setRevoking(null);
      setReload((n) => n + 1);
    } catch (e) {
      setError(problemText(e));
    } finally {
      setBusy(false);
    }
  }

  async function olderLogins() {
    if (olderThan === null) return;
    try {
      const page = await client.get<LoginPage>(`/api/v1/users/${id}/logins${queryString({ limit: LOGINS, before: olderThan })}`);
      setLogins((current) => [...current, ...page.items.filter((l) => !current.some((c) => c.id === l.id))]);
      setOlderThan(page.next_before);
    } catch (e) {
      setError(problemText(e));
    }
  }

  const back = (
    <a href={routeHash({ view: "users", q: "" })} className="back">
      ← All users
    </a>
  );
  if (!user) {
    return (
      <section className="console" data-testid="user-page" data-status={status}>
        {back}
        {status === "loading" && <p className="muted">Loading…</p>}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </section>
    );
  }

  const who = user.username;
  const allowed = actionsFor(user.status);
  const assignable = roles.filter((r) => !user.roles.includes(r.name));
  return (
    <section className="console user-page" aria-labelledby="user-title" data-testid="user-page" data-status={status} data-user-status={user.status}>
      {back}
      <header className="user-head">
        <h2 id="user-title">{displayName(user)}</h2>
        <span className={`status status-${user.status}`} data-testid="user-status">
          {statusText(user.status)}
        </span>
      </header>
      {error && (
        <p className="error" role="alert" data-testid="user-error">
          {error}
        </p>
      )}
      <p className="done" role="status" data-testid="user-done">
        {done}
      </p>

      <div ref={actions} className="user-actions" role="group" aria-label={`Actions on ${who}`}>
        {confirming ? (
          <Confirm
            label={`Confirm: ${QUESTIONS[confirming].yes.replace("Yes, ", "")} ${who}`}
            question={QUESTIONS[confirming].ask(who)}
            yes={QUESTIONS[confirming].yes}
            busy={busy}
            onYes={() => void act(confirming)}
            onNo={() => {
              settle.current = true;
              setConfirming(null);
            }}
          >
            {confirming === "logout-all" && (
              <label className="check">
                <input type="checkbox" checked={withKeys} onChange={(e) => setWithKeys(e.target.checked)} />
                Also revoke every API key
              </label>
            )}
          </Confirm>
        ) : (
          <>
            {allowed.block && (
              <button type="button" className="danger" disabled={busy} onClick={() => setConfirming("block")}>
                Block
              </button>
            )}
            {allowed.unblock && (
              <button type="button" disabled={busy} onClick={() => void act("unblock")}>
                Unblock
              </button>
            )}
            {allowed.logoutAll && (
              <button type="button" className="danger" disabled={busy} onClick={() => setConfirming("logout-all")}>
                Log out everywhere
              </button>
            )}
            {allowed.delete && (mfa?.totp.enrolled || mfa?.totp.pending) && (
              <button type="button" className="danger" disabled={busy} onClick={() => setConfirming("reset-mfa")}>
                Reset MFA
              </button>
            )}
            {allowed.delete && (
              <button type="button" className="danger" disabled={busy} onClick={() => setConfirming("delete")}>
                Delete
              </button>
            )}
            {allowed.restore && (
              <button type="button" disabled={busy} onClick={() => void act("restore")}>
                Restore
              </button>
            )}
          </>
        )}
      </div>

      <div className="user-grid">
        <section aria-labelledby="profile-title" className="card">
          <h3 id="profile-title">Profile</h3>
          <dl className="facts">
            <dt>Username</dt>
            <dd>{user.username}</dd>
            <dt>Email</dt>
            <dd>{user.email ? `${user.email} (${user.email_verified ? "verified" : "not verified"})` : "none"}</dd>
            <dt>MFA</dt>
            <dd data-testid="user-mfa" data-mfa={mfa === null ? "unknown" : mfa.totp.enrolled ? "on" : "off"}>
              {mfaText(mfa)}
            </dd>
            <dt>Name</dt>
            <dd>{[user.given_name, user.family_name].filter(Boolean).join(" ") || "—"}</dd>
            <dt>Created</dt>
            <dd>{when(user.created_at)}</dd>
            <dt>Last sign-in here</dt>
            <dd>{when(user.last_login_at)}</dd>
            <dt>Sign-ins here</dt>
            <dd>{user.logins_count.toLocaleString("en-US")}</dd>
            {user.password_reset_required && (
              <>
                <dt>Password</dt>
                <dd>must be set again (a login was found compromised)</dd>
              </>
            )}
            <dt>User metadata</dt>
            <dd>
              <pre>{JSON.stringify(user.user_metadata, null, 2)}</pre>
            </dd>
            <dt>App metadata</dt>
            <dd>
              <pre>{JSON.stringify(user.app_metadata, null, 2)}</pre>
            </dd>
          </dl>
        </section>

        <section aria-labelledby="roles-title" className="card">
          <h3 id="roles-title">Roles</h3>
          <ul className="chips" data-testid="user-roles">
            {user.roles.map((role) => (
              <li key={role}>
                {role}
                {user.status !== "deleted" && (
                  <button type="button" className="link" disabled={busy} onClick={() => void act({ unassign: role })} aria-label={`Remove role ${role}`}>
                    ×
                  </button>
                )}
              </li>
            ))}
          </ul>
          {assignable.length > 0 && user.status !== "deleted" && (
            <form
              className="inline"
              onSubmit={(e) => {
                e.preventDefault();
                const role = new FormData(e.currentTarget).get("role");
                if (typeof role === "string" && role) void act({ assign: role });
              }}
            >
              <label>
                <span className="sr-only">Role to give</span>
                <select name="role" defaultValue="">
                  <option value="" disabled>
                    Give a role…
                  </option>
                  {assignable.map((r) => (
                    <option key={r.id} value={r.name}>
                      {r.name}
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" disabled={busy}>
                Give
              </button>
            </form>
          )}

          <h3 id="keys-title">API keys</h3>
          {keys.length === 0 ? (
            <p className="muted">No API keys.</p>
          ) : (
            <table aria-labelledby="keys-title" data-testid="user-keys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Last used</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span className="sr-only">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((key) => {
                  const state = keyState(key, new Date());
                  return (
                    <tr key={key.id} data-state={state}>
                      <td>
                        {key.name} <code className="small">{key.key_id}</code>
                      </td>
                      <td>{key.scopes.join(" ")}</td>
                      <td>{when(key.last_used_at)}</td>
                      <td>{state}</td>
                      <td>
                        {state === "active" &&
                          (revoking === key.id ? (
                            <Confirm label={`Confirm: revoke ${key.name}`} question="" yes="Yes, revoke" busy={busy} onYes={() => void act({ revoke: key })} onNo={() => setRevoking(null)} />
                          ) : (
                            <button type="button" className="danger" disabled={busy} onClick={() => setRevoking(key.id)}>
                              Revoke<span className="sr-only"> {key.name}</span>
                            </button>
                          ))}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}

          <h3 id="sessions-title">Sessions</h3>
          {sessions.length === 0 ? (
            <p className="muted" data-testid="no-sessions">
              No live sessions.
            </p>
          ) : (
            <table aria-labelledby="sessions-title" data-testid="user-sessions">
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">From</th>
                </tr>
              </thead>
              <tbody>
                {sessions.map((s) => (
                  <tr key={s.id}>
                    <td>{when(s.created_at)}</td>
                    <td>{when(s.last_seen_at)}</td>
                    <td>
                      {s.ip ?? "unknown address"} · <span className="muted">{shortAgent(s.user_agent)}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>

        <section aria-labelledby="logins-title" className="card logins">
          <h3 id="logins-title">Where {who} signed in</h3>
          <LoginMap logins={logins} />
          {logins.length === 0 ? (
            <p className="muted">No sign-ins recorded.</p>
          ) : (
            <ol className="login-list" data-testid="user-logins">
              {logins.map((l) => (
                <li key={l.id} data-verdict={l.verdict ?? "none"} className={l.verdict ? `verdict-row verdict-row-${l.verdict}` : undefined}>
                  <time dateTime={l.occurred_at}>{when(l.occurred_at)}</time> · {l.place ? placeName(l.place) : "not located"} · {l.ip ?? "no address"} ·{" "}
                  <strong>{verdictText(l)}</strong>
                  {l.review && <> · reviewed {l.review}</>}
                </li>
              ))}
            </ol>
          )}
          {olderThan !== null && (
            <button type="button" onClick={() => void olderLogins()}>
              Show older sign-ins
            </button>
          )}
        </section>
      </div>
    </section>
  );
}

interface ConfirmProps {
  label: string;
  question: string;
  yes: string;
  busy: boolean;
  onYes: () => void;
  onNo: () => void;
  children?: ReactNode;
}

/** The question before a destructive action: the "yes" takes the focus, Cancel gives it back
 * to the page. */
function Confirm({ label, question, yes, busy, onYes, onNo, children }: ConfirmProps) {
  const yesButton = useRef<HTMLButtonElement>(null);
  useEffect(() => yesButton.current?.focus(), []);
  return (
    <div className="confirm" role="group" aria-label={label}>
      {question && <p>{question}</p>}
      {children}
      <button ref={yesButton} type="button" className="danger" disabled={busy} onClick={onYes}>
        {yes}
      </button>
      <button type="button" disabled={busy} onClick={onNo}>
        Cancel
      </button>
    </div>
  );
}
