import { useEffect, useRef, useState } from "react";
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from "chart.js";
import { ApiError, filterParams, isQueryProblem, queryString, type Client, type Filters, type LeveledPlace, type Level, type TopLocations as Top } from "./api";
import { count, percent } from "./format";
import { levelName, shortName } from "./places";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

interface Props {
  client: Client;
  filters: Filters;
  onSelect: (place: LeveledPlace) => void;
}

type Status = "loading" | "ready" | "empty" | "error";

export function TopLocations({ client, filters, onSelect }: Props) {
  const [level, setLevel] = useState<Level>("city");
  const [data, setData] = useState<Top | null>(null);
  const [status, setStatus] = useState<Status>("loading");
  const [error, setError] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"bar"> | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setStatus("loading");
    client
      .get<Top>(`/api/v1/analytics/top-locations${queryString({ ...filterParams(filters), level, limit: 10 })}`, controller.signal)
      .then((body) => {
        setData(body);
        setStatus(body.items.length ? "ready" : "empty");
        setError(null);
      })
      .catch((e) => {
        if (controller.signal.aborted) return;
        setData(null);
        setStatus("error");
        // A bad search is said once, under the search box.
        setError(e instanceof ApiError ? (isQueryProblem(e.problem) ? null : e.problem.detail) : "The server cannot be reached.");
      });
    return () => controller.abort();
  }, [client, filters, level]);

  useEffect(() => {
    if (!canvas.current) return;
    const items = data?.items ?? [];
    const config = {
      labels: items.map((p) => shortName(data!.level, p)),
      datasets: [{ label: "Sign-ins", data: items.map((p) => p.count), backgroundColor: "#d9480f" }],
    };
    if (!chart.current) {
      chart.current = new Chart(canvas.current, {
        type: "bar",
        data: config,
        options: {
          indexAxis: "y",
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { ticks: { autoSkip: false } } },
        },
      });
    } else {
      chart.current.data = config;
      chart.current.update();
    }
  }, [data]);

  useEffect(() => () => chart.current?.destroy(), []);

  const unit = filters.basis === "last_login" || filters.by === "users" ? "Users" : "Sign-ins";
  return (
    <section className="top" aria-labelledby="top-title" data-testid="top" data-status={status}>
      <header>
        <h2 id="top-title">Top 10</h2>
        <label>
          <span className="sr-only">Level</span>
          <select name="level" value={level} onChange={(e) => setLevel(e.target.value as Level)}>
            <option value="city">Cities</option>
            <option value="region">Regions</option>
            <option value="country">Countries</option>
          </select>
        </label>
      </header>
      <div className="chart">
        <canvas ref={canvas} role="img" aria-label={`Bar chart of the top ${level === "city" ? "cities" : level === "region" ? "regions" : "countries"}`} />
      </div>
      {status === "loading" && <p className="muted">Loading…</p>}
      {status === "empty" && <p className="muted">No sign-ins match these filters.</p>}
      {status === "error" && error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {data && data.items.length > 0 && (
        <div className="top-list" data-testid="top-table">
          <div className="top-row top-head" aria-hidden="true">
            <span>#</span>
            <span>Place</span>
            <span className="num">{unit}</span>
            <span className="num">Share</span>
          </div>
          {/* Each row is one button: a click anywhere on it, or Enter / Space on it, shows the
              place on the map. */}
          <ol aria-label={`Top places by ${unit.toLowerCase()}, ${count(data.total)} in all`}>
            {data.items.map((p, i) => (
              <li key={p.geoname_id} data-testid="top-row" data-count={p.count}>
                <button type="button" className="top-row" onClick={() => onSelect({ ...p, level: data.level })} disabled={p.lat == null}>
                  <span>{i + 1}</span>
                  <span className="top-name">{levelName(data.level, p)}</span>
                  <span className="num">
                    {count(p.count)}
                    <span className="sr-only"> {unit.toLowerCase()},</span>
                  </span>
                  <span className="num">{percent(p.share)}</span>
                </button>
              </li>
            ))}
          </ol>
          <div className="top-row top-foot">
            <span />
            <span>All places</span>
            <span className="num">{count(data.total)}</span>
            <span className="num">100.00 %</span>
          </div>
        </div>
      )}
    </section>
  );
}
