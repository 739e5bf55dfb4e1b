import { useEffect, useRef, useState } from "react";
import { ApiError, queryString, type Client, type FlaggedLogin, type FlaggedPage, type Review, type ReviewedLogin } from "./api";
import { journeyFigures, verdictTitle } from "./journeys";
import { journeyName, utcMinute } from "./places";
import { appended, reviewsOffered, withReview } from "./reviews";

interface Props {
  client: Client;
  /** Show this login's journey on the map. */
  onShow: (login: FlaggedLogin) => void;
}

type Status = "loading" | "ready" | "empty" | "error";

const PAGE = 20;

const problemText = (e: unknown) => (e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");

/** The newest suspicious and impossible sign-ins, each with Safe / Compromised reviews. */
export function FlaggedPanel({ client, onShow }: Props) {
  const [items, setItems] = useState<FlaggedLogin[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [status, setStatus] = useState<Status>("loading");
  // One message for the whole panel: the last thing that failed.
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<number | null>(null);
  const [busy, setBusy] = useState<number | null>(null);
  // The row just reviewed here: its review takes the focus from the button that went away.
  const [reviewed, setReviewed] = useState<number | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setStatus("loading");
    client
      .get<FlaggedPage>(`/api/v1/logins/flagged${queryString({ limit: PAGE })}`, controller.signal)
      .then((page) => {
        setItems(page.items);
        setNext(page.next_before);
        setStatus(page.items.length ? "ready" : "empty");
        setError(null);
      })
      .catch((e) => {
        if (controller.signal.aborted) return;
        setStatus("error");
        setError(problemText(e));
      });
    return () => controller.abort();
  }, [client, reload]);

  async function loadMore() {
    if (next === null) return;
    try {
      const page = await client.get<FlaggedPage>(`/api/v1/logins/flagged${queryString({ limit: PAGE, before: next })}`);
      setItems((current) => appended(current, page.items));
      setNext(page.next_before);
      setError(null);
    } catch (e) {
      setError(problemText(e));
    }
  }

  async function review(login: FlaggedLogin, verdict: Review) {
    setBusy(login.id);
    setError(null);
    try {
      const done = await client.post<ReviewedLogin>(`/api/v1/logins/${login.id}/review`, { verdict });
      setItems((current) => withReview(current, done));
      setConfirming(null);
      setReviewed(login.id);
    } catch (e) {
      setError(`${login.username ?? login.subject}: ${problemText(e)}`);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="flagged" aria-labelledby="flagged-title" data-testid="flagged" data-status={status}>
      <header>
        <h2 id="flagged-title">Flagged sign-ins</h2>
        <button type="button" onClick={() => setReload((n) => n + 1)}>
          Refresh
        </button>
      </header>
      {error && (
        <p className="error" role="alert" data-testid="flagged-error">
          {error}
        </p>
      )}
      {status === "loading" && <p className="muted">Loading…</p>}
      {status === "empty" && <p className="muted">No suspicious or impossible sign-ins.</p>}
      <ol className="flagged-list">
        {items.map((login) => (
          <Row
            key={login.id}
            login={login}
            busy={busy === login.id}
            confirming={confirming === login.id}
            justReviewed={reviewed === login.id}
            onShow={() => onShow(login)}
            onReview={(verdict) => void review(login, verdict)}
            onConfirm={(on) => setConfirming(on ? login.id : null)}
          />
        ))}
      </ol>
      {next !== null && (
        <button type="button" onClick={() => void loadMore()}>
          Show older
        </button>
      )}
    </section>
  );
}

interface RowProps {
  login: FlaggedLogin;
  busy: boolean;
  confirming: boolean;
  justReviewed: boolean;
  onShow: () => void;
  onReview: (verdict: Review) => void;
  onConfirm: (on: boolean) => void;
}

function Row({ login, busy, confirming, justReviewed, onShow, onReview, onConfirm }: RowProps) {
  const who = login.username ?? login.subject;
  const offered = reviewsOffered(login.review);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const compromisedButton = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);
  const reviewLine = useRef<HTMLParagraphElement>(null);

  // Keyboard users land on the question, and back on the button when it is answered "no".
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
    else if (wasConfirming.current && !justReviewed) compromisedButton.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  useEffect(() => {
    if (justReviewed) reviewLine.current?.focus();
  }, [justReviewed, login.review]);

  return (
    <li className="flagged-row" data-testid="flagged-row" data-id={login.id} data-review={login.review ?? "none"} aria-busy={busy}>
      <div className="flagged-head">
        <strong>{who}</strong>
        <span className={`verdict verdict-${login.verdict}`}>{verdictTitle(login.verdict)}</span>
      </div>
      <p className="flagged-places">{journeyName(login.origin, login.destination)}</p>
      <p className="muted small">
        {journeyFigures(login)} · via {login.source} · <time dateTime={login.occurred_at}>{utcMinute(login.occurred_at)}</time>
      </p>
      {login.review && (
        <p ref={reviewLine} tabIndex={-1} className={`review review-${login.review}`} data-testid="flagged-review">
          Reviewed: {login.review}
          {login.reviewed_at && <> · {utcMinute(login.reviewed_at)}</>}
        </p>
      )}
      {confirming ? (
        <div className="confirm" role="group" aria-label={`Confirm ${who} was compromised`}>
          <p>Compromised ends every session and key of {who} and asks for a new password.</p>
          <button ref={confirmButton} type="button" className="danger" disabled={busy} onClick={() => onReview("compromised")}>
            Yes, compromised
          </button>
          <button type="button" disabled={busy} onClick={() => onConfirm(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <div className="actions">
          <button type="button" className="link" onClick={onShow} disabled={!login.origin || !login.destination}>
            Show on map
          </button>
          {offered.includes("safe") && (
            <button type="button" disabled={busy} onClick={() => onReview("safe")}>
              Safe<span className="sr-only"> ({who}, {utcMinute(login.occurred_at)})</span>
            </button>
          )}
          {offered.includes("compromised") && (
            <button ref={compromisedButton} type="button" className="danger" disabled={busy} onClick={() => onConfirm(true)}>
              Compromised<span className="sr-only"> ({who}, {utcMinute(login.occurred_at)})</span>
            </button>
          )}
        </div>
      )}
    </li>
  );
}
