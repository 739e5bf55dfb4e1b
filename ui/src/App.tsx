import { useEffect, useMemo, useState } from "react";
import { AccountPages } from "./AccountPages";
import { parseAccountRoute } from "./accountRoutes";
import { parseRoute, routeHash, type Route } from "./admin";
import { Client, isQueryProblem, sessionStore, type FlaggedLogin, type LeveledPlace, type Problem, type User } from "./api";
import { FilterBar, type FilterState } from "./FilterBar";
import { FlaggedPanel } from "./FlaggedPanel";
import { MapView } from "./MapView";
import { SignIn } from "./SignIn";
import { TopLocations } from "./TopLocations";
import { UserPage } from "./UserPage";
import { UsersList } from "./UsersList";

interface Config {
  tile_url: string | null;
  tile_attribution: string;
}

const INITIAL: FilterState = { filters: { outcome: "any", q: "", by: "events", basis: "all" }, arcs: true };

export function App() {
  const [signedIn, setSignedIn] = useState(() => sessionStore.get() !== null);
  const [notice, setNotice] = useState<string | undefined>();
  const client = useMemo(
    () =>
      new Client(sessionStore, () => {
        setNotice("Your session ended; sign in again.");
        setSignedIn(false);
      }),
    [],
  );
  const [state, setState] = useState<FilterState>(INITIAL);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [focus, setFocus] = useState<LeveledPlace | null>(null);
  const [journey, setJourney] = useState<FlaggedLogin | null>(null);
  const [config, setConfig] = useState<Config | null>(null);
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  // The pages the account emails link to: read once from the link (the page then takes the
  // token out of the address bar, which fires no hashchange), and shown signed in or not.
  const [account, setAccount] = useState(() => parseAccountRoute(window.location.hash));
  // The console is for administrators: the tab shows once the account says it is one.
  const [admin, setAdmin] = useState<boolean | null>(null);

  useEffect(() => {
    const follow = () => {
      setRoute(parseRoute(window.location.hash));
      setAccount(parseAccountRoute(window.location.hash));
    };
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);

  useEffect(() => {
    if (!signedIn) return;
    setAdmin(null);
    client.get<User>("/api/v1/users/me").then(
      (me) => setAdmin(me.roles.includes("admin")),
      () => setAdmin(false),
    );
  }, [client, signedIn]);

  useEffect(() => {
    fetch("/dashboard/config.json")
      .then((r) => (r.ok ? r.json() : { tile_url: null, tile_attribution: "" }))
      .then(setConfig)
      .catch(() => setConfig({ tile_url: null, tile_attribution: "" }));
  }, []);

  if (account) return <AccountPages key={account.page} route={account} />;
  if (!signedIn) return <SignIn client={client} notice={notice} onSignedIn={() => setSignedIn(true)} />;
  if (!config) return <p className="muted">Loading…</p>;

  const queryError = problem && isQueryProblem(problem) ? problem.detail : null;
  const forbidden = problem?.status === 403;
  const go = (next: Route) => {
    window.location.hash = routeHash(next);
  };
  const console_ = admin !== false && route.view !== "map";
  const header = (
    <header className="bar">
      <h1>{console_ ? "Admin console" : "Where sign-ins come from"}</h1>
      <nav className="tabs" aria-label="Views">
        <a href={routeHash({ view: "map" })} aria-current={route.view === "map" ? "page" : undefined}>
          Map
        </a>
        {admin && (
          <a href={routeHash({ view: "users", q: "" })} aria-current={route.view !== "map" ? "page" : undefined}>
            Users
          </a>
        )}
      </nav>
      <button
          type="button"
          onClick={() => {
            client.signOut();
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
    </header>
  );
  if (console_) {
    return (
      <div className="app">
        {header}
        <main className="console-main">
          {admin === null ? (
            <p className="muted">Loading…</p>
          ) : route.view === "user" ? <UserPage key={route.id} client={client} id={route.id} /> : <UsersList client={client} q={route.view === "users" ? route.q : ""} onSearch={(q) => go({ view: "users", q })} />}
        </main>
      </div>
    );
  }
  return (
    <div className="app">
      {header}
      <FilterBar value={state} queryError={queryError} onApply={(next) => setState(next)} />
      {forbidden && (
        <p className="error banner" role="alert">
          This account may not read analytics: sign in as an administrator.
        </p>
      )}
      <main className="content">
        <MapView
          client={client}
          filters={state.filters}
          arcs={state.arcs}
          tileUrl={config.tile_url}
          tileAttribution={config.tile_attribution}
          focus={focus}
          journey={journey}
          onProblem={setProblem}
        />
        <aside className="side">
          <TopLocations client={client} filters={state.filters} onSelect={setFocus} />
          <FlaggedPanel client={client} onShow={(login) => setJourney({ ...login })} />
        </aside>
      </main>
      <footer className="muted small">
        Places by GeoIP; includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com.
      </footer>
    </div>
  );
}
