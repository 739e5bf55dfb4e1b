import { useEffect, useState, type FormEvent } from "react";
import { ApiError, isQueryProblem, type Client, type UserPage } from "./api";
import { displayName, FIRST_PAGE, nextPage, pageNumber, previousPage, routeHash, statusText, usersPath, when, type Paging } from "./admin";

interface Props {
  client: Client;
  /** The search in the address (so back and reload keep it). */
  q: string;
  onSearch: (q: string) => void;
}

type Status = "loading" | "ready" | "empty" | "error";

const problemText = (e: unknown) => (e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");

/** Every account, searched with the users API's query language, a page at a time. */
export function UsersList({ client, q, onSearch }: Props) {
  const [text, setText] = useState(q);
  const [paging, setPaging] = useState<Paging>(FIRST_PAGE);
  const [page, setPage] = useState<UserPage | null>(null);
  const [status, setStatus] = useState<Status>("loading");
  const [error, setError] = useState<{ text: string; query: boolean } | null>(null);

  // A new search starts at the first page.
  useEffect(() => {
    setText(q);
    setPaging(FIRST_PAGE);
  }, [q]);

  useEffect(() => {
    const controller = new AbortController();
    setStatus("loading");
    client
      .get<UserPage>(usersPath(q, paging), controller.signal)
      .then((body) => {
        setPage(body);
        setStatus(body.items.length ? "ready" : "empty");
        setError(null);
      })
      .catch((e) => {
        if (controller.signal.aborted) return;
        setPage(null);
        setStatus("error");
        setError({ text: problemText(e), query: e instanceof ApiError && isQueryProblem(e.problem) });
      });
    return () => controller.abort();
  }, [client, q, paging]);

  function submit(event: FormEvent) {
    event.preventDefault();
    if (text.trim() === q.trim()) setPaging(FIRST_PAGE);
    else onSearch(text.trim());
  }

  return (
    <section className="console" aria-labelledby="users-title" data-testid="users" data-status={status}>
      <h2 id="users-title">Users</h2>
      <form className="query" role="search" onSubmit={submit}>
        <label htmlFor="user-q">Search users</label>
        <div className="query-row">
          <input
            id="user-q"
            name="user-q"
            type="search"
            spellCheck={false}
            placeholder='username:ada* OR email:"ada@example.com"'
            value={text}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={error?.query ? true : undefined}
            aria-describedby={error ? "users-error" : "user-q-help"}
          />
          <button type="submit">Search</button>
        </div>
        {!error && (
          <p id="user-q-help" className="muted small">
            field:value, AND / OR / NOT, prefix*, ranges — e.g. <code>status:blocked</code>, <code>user_metadata.subscription_tier:premium</code>,{" "}
            <code>created_at:[2026-01-01 TO *]</code>
          </p>
        )}
      </form>
      {error && (
        <p id="users-error" className="error" role="alert" data-testid="users-error">
          {error.text}
        </p>
      )}
      {status === "loading" && <p className="muted">Loading…</p>}
      {status === "empty" && <p className="muted">No user matches.</p>}
      {page && page.items.length > 0 && (
        <table className="users-table" data-testid="users-table">
          <caption className="sr-only">Users, page {pageNumber(paging)}</caption>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Email</th>
              <th scope="col">Status</th>
              <th scope="col">Roles</th>
              <th scope="col">Last sign-in</th>
              <th scope="col" className="num">
                Sign-ins
              </th>
            </tr>
          </thead>
          <tbody>
            {page.items.map((user) => (
              <tr key={user.id} data-testid="user-row" data-status={user.status}>
                <td>
                  <a href={routeHash({ view: "user", id: user.id })}>{user.username}</a>
                  {displayName(user) !== user.username && <span className="muted small"> {displayName(user)}</span>}
                </td>
                <td>{user.email ?? <span className="muted">none</span>}</td>
                <td>
                  <span className={`status status-${user.status}`}>{statusText(user.status)}</span>
                </td>
                <td>{user.roles.join(", ")}</td>
                <td>{when(user.last_login_at)}</td>
                <td className="num">{user.logins_count.toLocaleString("en-US")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav className="pager" aria-label="Pages of users">
        <button type="button" onClick={() => setPaging(previousPage(paging))} disabled={paging.previous.length === 0 || status === "loading"}>
          Previous page
        </button>
        <span className="muted small" aria-live="polite">
          Page {pageNumber(paging)}
        </span>
        <button type="button" onClick={() => setPaging(nextPage(paging, page?.next_cursor ?? null))} disabled={!page?.next_cursor || status === "loading"}>
          Next page
        </button>
      </nav>
    </section>
  );
}
