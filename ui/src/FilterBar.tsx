import { useState, type FormEvent } from "react";
import type { Filters, Outcome } from "./api";
import { PRESETS, presetRange, rangeProblem, type Preset, type Range } from "./timeRange";

export interface FilterState {
  filters: Filters;
  arcs: boolean;
}

interface Props {
  value: FilterState;
  queryError: string | null;
  onApply: (next: FilterState) => void;
}

export function FilterBar({ value, queryError, onApply }: Props) {
  const [q, setQ] = useState(value.filters.q);
  const [preset, setPreset] = useState<Preset>("all");
  const [custom, setCustom] = useState<Range>({});
  const [outcome, setOutcome] = useState<Outcome>(value.filters.outcome);
  const [by, setBy] = useState(value.filters.by);
  const [basis, setBasis] = useState(value.filters.basis);
  const [arcs, setArcs] = useState(value.arcs);
  const range = presetRange(preset, new Date(), custom);
  const problem = preset === "custom" ? rangeProblem(range) : null;

  function submit(event?: FormEvent) {
    event?.preventDefault();
    if (problem) return;
    onApply({ filters: { ...range, q, outcome, by, basis }, arcs });
  }

  return (
    <form className="filters" onSubmit={submit} aria-label="Filters">
      <div className="query">
        <label htmlFor="q">Users matching</label>
        <div className="query-row">
          <input
            id="q"
            name="q"
            type="search"
            spellCheck={false}
            placeholder="user_metadata.subscription_tier:premium"
            value={q}
            onChange={(e) => setQ(e.target.value)}
            aria-invalid={queryError ? true : undefined}
            aria-describedby={queryError ? "q-error" : "q-help"}
          />
          <button type="submit">Apply</button>
        </div>
        {queryError ? (
          <p id="q-error" className="error" role="alert" data-testid="query-error">
            {queryError}
          </p>
        ) : (
          <p id="q-help" className="muted small">
            field:value, AND / OR / NOT, prefix*, ranges — e.g. <code>user_metadata.purchasing_behavior:"frequent buyer"</code>
          </p>
        )}
      </div>
      <label>
        Time
        <select value={preset} onChange={(e) => setPreset(e.target.value as Preset)} name="range">
          {PRESETS.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      {preset === "custom" && (
        <fieldset className="custom-range">
          <legend className="sr-only">Custom range (UTC days)</legend>
          <label>
            From
            <input type="date" value={custom.from ?? ""} onChange={(e) => setCustom({ ...custom, from: e.target.value })} />
          </label>
          <label>
            To
            <input type="date" value={custom.to ?? ""} onChange={(e) => setCustom({ ...custom, to: e.target.value })} />
          </label>
          {problem && (
            <p className="error" role="alert">
              {problem}
            </p>
          )}
        </fieldset>
      )}
      <label>
        Outcome
        <select name="outcome" value={outcome} onChange={(e) => setOutcome(e.target.value as Outcome)}>
          <option value="any">Any</option>
          <option value="success">Successful</option>
          <option value="failure" disabled={basis === "last_login"}>Failed</option>
        </select>
      </label>
      <label>
        Count
        <select name="by" value={basis === "last_login" ? "users" : by} disabled={basis === "last_login"} onChange={(e) => setBy(e.target.value as Filters["by"])}>
          <option value="events">Sign-ins</option>
          <option value="users">Distinct users</option>
        </select>
      </label>
      <label>
        Basis
        <select name="basis" value={basis} onChange={(e) => setBasis(e.target.value as Filters["basis"])}>
          <option value="all">Every sign-in</option>
          <option value="last_login">Each user's last sign-in</option>
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={arcs} onChange={(e) => setArcs(e.target.checked)} name="arcs" />
        Suspicious travel
      </label>
    </form>
  );
}
