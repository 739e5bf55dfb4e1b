import { useState, type FormEvent } from "react";
import { mfaCode, mfaPrompt } from "./accountRoutes";
import { ApiError, MfaRequired, type Client } from "./api";

export function SignIn({ client, onSignedIn, notice }: { client: Client; onSignedIn: () => void; notice?: string }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(notice ?? null);
  const [busy, setBusy] = useState(false);
  // A sign-in held back for a second factor: its token is kept until the server says it
  // no longer works (expired, used up, too many wrong codes).
  const [challenge, setChallenge] = useState<MfaRequired | null>(null);
  const [code, setCode] = useState("");

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await client.signIn(username, password);
      onSignedIn();
    } catch (e) {
      if (e instanceof MfaRequired) {
        setCode("");
        setChallenge(e);
      } else setError(e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  }

  async function verify(event: FormEvent) {
    event.preventDefault();
    if (!challenge) return;
    const typed = mfaCode(code);
    if (typed === null) {
      setError("Enter the 6 digits, or a recovery code (xxxx-xxxx-xxxx).");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await client.verifyMfa(challenge.mfaToken, typed);
      onSignedIn();
    } catch (e) {
      if (e instanceof ApiError && e.problem.code === "invalid_token") {
        setChallenge(null);
        setPassword("");
        setError("This sign-in expired or was ended. Sign in again.");
      } else setError(e instanceof ApiError ? e.problem.detail : "The server cannot be reached.");
    } finally {
      setBusy(false);
    }
  }

  const alert = error && (
    <p role="alert" className="error">
      {error}
    </p>
  );

  if (challenge) {
    return (
      <main className="signin">
        <form onSubmit={verify} aria-labelledby="mfa-title" data-testid="mfa-form">
          <h1 id="mfa-title">Second factor</h1>
          <p className="muted" data-testid="mfa-prompt">
            {mfaPrompt(challenge.methods)}
          </p>
          <label>
            Code
            <input
              name="code"
              autoComplete="one-time-code"
              inputMode={challenge.methods.includes("recovery_code") ? "text" : "numeric"}
              autoFocus
              required
              maxLength={64}
              value={code}
              onChange={(e) => setCode(e.target.value)}
            />
          </label>
          {alert}
          <button type="submit" disabled={busy}>
            {busy ? "Checking…" : "Verify"}
          </button>
          <button
            type="button"
            className="link"
            onClick={() => {
              setChallenge(null);
              setError(null);
            }}
          >
            Back to sign-in
          </button>
        </form>
      </main>
    );
  }

  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title" data-testid="signin-form">
        <h1 id="signin-title">Globeguard</h1>
        <p className="muted">Sign in as an administrator to see where your users sign in from.</p>
        <label>
          Username or email
          <input name="username" autoComplete="username" autoFocus required value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {alert}
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <a href="#/forgot-password" className="small">
          Forgot your password?
        </a>
      </form>
    </main>
  );
}
