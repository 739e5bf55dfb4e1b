import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { carriesSecrets, forgotBody, newPasswordProblem, PASSWORD_MIN, scrubbedHash, type AccountRoute, type Answer } from "./accountRoutes";
import { ApiError, postPublic } from "./api";

// The pages an account email links to. Nothing here needs a sign-in: the token the link
// carries is the proof. Each posts only when its button is pressed, never on load, so a mail
// scanner that opens the link does not use it up.

const unreachable = "The server cannot be reached. Try again in a moment.";
const problemOf = (e: unknown) => (e instanceof ApiError ? e.problem : null);

const SIGN_IN = "#/";
const FORGOT = "#/forgot-password";

/** The page for `route`. The token is read once, here, and the address bar then loses it. */
export function AccountPages({ route }: { route: AccountRoute }) {
  useEffect(() => {
    if (carriesSecrets(window.location.hash)) {
      const { pathname, search } = window.location;
      window.history.replaceState(window.history.state, "", `${pathname}${search}${scrubbedHash(route.page)}`);
    }
  }, [route.page]);

  switch (route.page) {
    case "verify-email":
      return <VerifyEmail token={route.token} />;
    case "reset-password":
      return <ResetPassword token={route.token} />;
    case "login-feedback":
      return <LoginFeedback token={route.token} answer={route.answer} />;
    case "forgot-password":
      return <ForgotPassword />;
  }
}

function Page({ title, testid, state, children }: { title: string; testid: string; state: string; children: ReactNode }) {
  return (
    <main className="signin">
      <section className="account-page" aria-labelledby="account-title" data-testid={testid} data-state={state}>
        <h1 id="account-title">{title}</h1>
        {children}
      </section>
    </main>
  );
}

/** The page's one alert: what went wrong last. */
function Alert({ text, children }: { text: string | null; children?: ReactNode }) {
  if (!text) return null;
  return (
    <div role="alert" className="error" data-testid="account-error">
      <p>{text}</p>
      {children}
    </div>
  );
}

/** The link (or its token) did not make it whole: say so without asking the server. */
function BrokenLink({ title, testid, again }: { title: string; testid: string; again: ReactNode }) {
  return (
    <Page title={title} testid={testid} state="broken">
      <Alert text="This link is incomplete. Open the whole link from the email, or ask for a new one.">{again}</Alert>
      <a href={SIGN_IN}>Go to sign-in</a>
    </Page>
  );
}

/** After a result, the focus goes to it, so a keyboard or screen reader user hears it. */
function useFocusOnChange<T>(value: T) {
  const target = useRef<HTMLParagraphElement>(null);
  useEffect(() => target.current?.focus(), [value]);
  return target;
}

function VerifyEmail({ token }: { token: string | null }) {
  const [state, setState] = useState<"ready" | "busy" | "done" | "failed">("ready");
  const [error, setError] = useState<string | null>(null);
  const result = useFocusOnChange(state === "done");
  if (token === null) return <BrokenLink title="Verify your email" testid="verify-email" again={null} />;

  async function verify() {
    setState("busy");
    setError(null);
    try {
      await postPublic("/api/v1/auth/verify-email", { token });
      setState("done");
    } catch (e) {
      const problem = problemOf(e);
      setError(problem?.code === "invalid_token" ? "This link does not work: it may have expired, been used already, or the account's email changed since. Sign in and ask for a new one." : (problem?.detail ?? unreachable));
      setState("failed");
    }
  }

  return (
    <Page title="Verify your email" testid="verify-email" state={state}>
      {state === "done" ? (
        <>
          <p ref={result} tabIndex={-1} className="done" data-testid="account-result">
            Email verified. Thank you.
          </p>
          <a href={SIGN_IN}>Go to sign-in</a>
        </>
      ) : (
        <>
          <p className="muted">Press the button to confirm this address belongs to you.</p>
          <Alert text={error} />
          <button type="button" disabled={state === "busy" || state === "failed"} onClick={() => void verify()}>
            {state === "busy" ? "Verifying…" : "Verify my email"}
          </button>
          {state === "failed" && <a href={SIGN_IN}>Go to sign-in</a>}
        </>
      )}
    </Page>
  );
}

function ResetPassword({ token }: { token: string | null }) {
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [state, setState] = useState<"ready" | "busy" | "done" | "invalid">("ready");
  const [error, setError] = useState<string | null>(null);
  const result = useFocusOnChange(state === "done");
  const askAgain = <a href={FORGOT}>Ask for a new link</a>;
  if (token === null) return <BrokenLink title="Set a new password" testid="reset-password" again={askAgain} />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = newPasswordProblem(password, again);
    setError(problem);
    if (problem) return;
    setState("busy");
    try {
      await postPublic("/api/v1/auth/password/reset", { token, password });
      setPassword("");
      setAgain("");
      setState("done");
    } catch (e) {
      const refused = problemOf(e);
      if (refused?.code === "invalid_token") {
        setError("This link does not work any more: it may have expired (links last 30 minutes), been used, or been replaced by a newer one.");
        setState("invalid");
      } else {
        // A weak, common or breached password: the server says why, and the link still works.
        setError(refused?.detail ?? unreachable);
        setState("ready");
      }
    }
  }

  if (state === "done") {
    return (
      <Page title="Set a new password" testid="reset-password" state={state}>
        <p ref={result} tabIndex={-1} className="done" data-testid="account-result">
          Your password was changed. Every earlier session was signed out.
        </p>
        <a href={SIGN_IN}>Sign in with the new password</a>
      </Page>
    );
  }
  return (
    <Page title="Set a new password" testid="reset-password" state={state}>
      {state === "invalid" ? (
        <Alert text={error}>{askAgain}</Alert>
      ) : (
        <form onSubmit={submit} noValidate>
          <label>
            New password
            <input name="new-password" type="password" autoComplete="new-password" autoFocus required minLength={PASSWORD_MIN} value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
          <label>
            New password again
            <input name="new-password-again" type="password" autoComplete="new-password" required value={again} onChange={(e) => setAgain(e.target.value)} />
          </label>
          <p className="muted small">At least {PASSWORD_MIN} characters. A few unrelated words make a strong one.</p>
          <Alert text={error} />
          <button type="submit" disabled={state === "busy"}>
            {state === "busy" ? "Saving…" : "Set password"}
          </button>
        </form>
      )}
    </Page>
  );
}

function ForgotPassword() {
  const [typed, setTyped] = useState("");
  const [state, setState] = useState<"ready" | "busy" | "sent">("ready");
  const [error, setError] = useState<string | null>(null);
  const result = useFocusOnChange(state === "sent");

  async function submit(event: FormEvent) {
    event.preventDefault();
    const body = forgotBody(typed);
    if (!body) {
      setError("Enter your email address or username.");
      return;
    }
    setState("busy");
    setError(null);
    try {
      await postPublic("/api/v1/auth/password/forgot", body);
      setState("sent");
    } catch (e) {
      setError(problemOf(e)?.detail ?? unreachable);
      setState("ready");
    }
  }

  return (
    <Page title="Forgot your password?" testid="forgot-password" state={state}>
      {state === "sent" ? (
        <>
          <p ref={result} tabIndex={-1} className="done" data-testid="account-result">
            If an account exists, we sent a link to its email address. It works for 30 minutes.
          </p>
          <a href={SIGN_IN}>Back to sign-in</a>
        </>
      ) : (
        <form onSubmit={submit} noValidate>
          <p className="muted">We will email a link to set a new password.</p>
          <label>
            Email or username
            <input name="account" autoComplete="username" autoFocus required value={typed} onChange={(e) => setTyped(e.target.value)} />
          </label>
          <Alert text={error} />
          <button type="submit" disabled={state === "busy"}>
            {state === "busy" ? "Sending…" : "Send the link"}
          </button>
          <a href={SIGN_IN}>Back to sign-in</a>
        </form>
      )}
    </Page>
  );
}

interface Answered {
  answer: Answer;
  sessions_revoked: number | null;
  password_reset_sent: boolean;
}

const ANSWERS: Record<Answer, string> = { yes: "Yes, this was me", no: "No, secure my account" };

function LoginFeedback({ token, answer }: { token: string | null; answer: Answer | null }) {
  const [state, setState] = useState<"ready" | "busy" | "done" | "failed">("ready");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<Answered | null>(null);
  const result = useFocusOnChange(done);
  if (token === null) return <BrokenLink title="Was this you?" testid="login-feedback" again={null} />;

  async function send(chosen: Answer) {
    setState("busy");
    setError(null);
    try {
      setDone(await postPublic<Answered>("/api/v1/auth/login-feedback", { token, answer: chosen }));
      setState("done");
    } catch (e) {
      const problem = problemOf(e);
      setError(problem?.code === "invalid_token" ? "This link does not work any more: it was answered already or has expired." : (problem?.detail ?? unreachable));
      setState(problem?.code === "invalid_token" ? "failed" : "ready");
    }
  }

  if (done) {
    return (
      <Page title="Was this you?" testid="login-feedback" state="done">
        <p ref={result} tabIndex={-1} className="done" data-testid="account-result">
          {done.answer === "yes"
            ? "Thank you: the place is confirmed, and sign-ins from there will not be questioned."
            : `Your account is secured: your sessions were ended${done.sessions_revoked ? ` (${done.sessions_revoked})` : ""}${done.password_reset_sent ? " and a link to set a new password was sent to your email." : ". Ask an administrator to help you set a new password."}`}
        </p>
        <a href={SIGN_IN}>Go to sign-in</a>
      </Page>
    );
  }
  // Both answers are offered; the one clicked in the email is the suggested one, and still
  // only sent when pressed here.
  const order: Answer[] = answer === "no" ? ["no", "yes"] : ["yes", "no"];
  return (
    <Page title="Was this you?" testid="login-feedback" state={state}>
      {answer ? (
        <p id="feedback-answer" data-testid="feedback-answer">
          In the email you chose <strong>“{ANSWERS[answer]}”</strong>. Press it below to confirm.
        </p>
      ) : (
        <p>Tell us whether the sign-in the email describes was you.</p>
      )}
      {answer === "no" && <p className="muted small">Every session of the account ends and you will set a new password from a link we email you.</p>}
      <Alert text={error} />
      <div className="actions" role="group" aria-label="Your answer">
        {order.map((choice) => (
          <button
            key={choice}
            type="button"
            className={choice === answer ? (choice === "no" ? "danger primary-choice" : "primary-choice") : undefined}
            aria-describedby={choice === answer ? "feedback-answer" : undefined}
            autoFocus={choice === answer}
            disabled={state !== "ready"}
            onClick={() => void send(choice)}
          >
            {ANSWERS[choice]}
          </button>
        ))}
      </div>
      {state === "failed" && <a href={SIGN_IN}>Go to sign-in</a>}
    </Page>
  );
}
