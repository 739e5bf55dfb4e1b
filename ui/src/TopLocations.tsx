import { useEffect, useRef, useState } from "react";
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from "chart.js";
import { ApiError, filterParams, queryString, type Client, type Filters, type Level, type PlaceCount, type TopLocations as Top } from "./api";
import { count, percent } from "./format";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

interface Props {
  client: Client;
  filters: Filters;
  onSelect: (place: PlaceCount) => void;
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
        setError(e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");
      });
    return () => controller.abort();
  }, [client, filters, level]);

  useEffect(() => {
    if (!canvas.current) return;
    const items = data?.items ?? [];
    const config = {
      labels: items.map((p) => p.label),
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
      {status === "error" && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {data && data.items.length > 0 && (
        <table data-testid="top-table">
          <caption className="sr-only">Top places, {count(data.total)} in all</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Place</th>
              <th scope="col" className="num">
                {unit}
              </th>
              <th scope="col" className="num">
                Share
              </th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((p, i) => (
              <tr key={p.geoname_id} data-count={p.count}>
                <td>{i + 1}</td>
                <td>
                  <button type="button" className="link" onClick={() => onSelect(p)} disabled={p.lat == null}>
                    {p.label}
                  </button>
                </td>
                <td className="num">{count(p.count)}</td>
                <td className="num">{percent(p.share)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <td />
              <td>All places</td>
              <td className="num">{count(data.total)}</td>
              <td className="num">100.00 %</td>
            </tr>
          </tfoot>
        </table>
      )}
    </section>
  );
}
