import { useEffect, useMemo, useState } from "react";
import { Client, isQueryProblem, sessionStore, type FlaggedLogin, type PlaceCount, type Problem } from "./api";
import { FilterBar, type FilterState } from "./FilterBar";
import { FlaggedPanel } from "./FlaggedPanel";
import { MapView } from "./MapView";
import { SignIn } from "./SignIn";
import { TopLocations } from "./TopLocations";

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
  const [focus, setFocus] = useState<PlaceCount | null>(null);
  const [journey, setJourney] = useState<FlaggedLogin | null>(null);
  const [config, setConfig] = useState<Config | null>(null);

  useEffect(() => {
    fetch("/dashboard/config.json")
      .then((r) => (r.ok ? r.json() : { tile_url: null, tile_attribution: "" }))
      .then(setConfig)
      .catch(() => setConfig({ tile_url: null, tile_attribution: "" }));
  }, []);

  if (!signedIn) return <SignIn client={client} notice={notice} onSignedIn={() => setSignedIn(true)} />;
  if (!config) return <p className="muted">Loading…</p>;

  const queryError = problem && isQueryProblem(problem) ? problem.detail : null;
  const forbidden = problem?.status === 403;
  return (
    <div className="app">
      <header className="bar">
        <h1>Where sign-ins come from</h1>
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
