// The pages the account emails link to (`#/verify-email?token=…` and the rest), and the checks
// their forms make before asking the server. Pure.

export type Answer = "yes" | "no";

export type AccountRoute =
  | { page: "verify-email"; token: string | null }
  | { page: "reset-password"; token: string | null }
  | { page: "login-feedback"; token: string | null; answer: Answer | null }
  | { page: "forgot-password" };

export type AccountPage = AccountRoute["page"];

// Each link carries its own kind of token: a 4-character prefix and base64url. Anything else
// is not one of our links (a mangled copy-paste), and is not sent.
const TOKEN = /^[A-Za-z0-9_-]{8,128}$/;
const PREFIX: Record<"verify-email" | "reset-password" | "login-feedback", string> = {
  "verify-email": "ggv_",
  "reset-password": "ggr_",
  "login-feedback": "ggf_",
};

function tokenFor(page: keyof typeof PREFIX, raw: string | null): string | null {
  const token = raw?.trim() ?? "";
  return token.startsWith(PREFIX[page]) && TOKEN.test(token) ? token : null;
}

/** "#/reset-password?token=ggr_…" → the page and what the link carries; null for any other
 * hash (the dashboard's own routes). A missing or malformed token reads as null: the page then
 * says the link is incomplete instead of asking the server. */
export function parseAccountRoute(hash: string): AccountRoute | null {
  const path = hash.replace(/^#/, "");
  const [pathname, search = ""] = path.split("?", 2);
  const name = pathname.split("/").filter(Boolean);
  if (name.length !== 1) return null;
  const params = new URLSearchParams(search);
  switch (name[0]) {
    case "forgot-password":
      return { page: "forgot-password" };
    case "verify-email":
    case "reset-password":
      return { page: name[0], token: tokenFor(name[0], params.get("token")) };
    case "login-feedback": {
      const answer = params.get("answer");
      return {
        page: "login-feedback",
        token: tokenFor("login-feedback", params.get("token")),
        answer: answer === "yes" || answer === "no" ? answer : null,
      };
    }
    default:
      return null;
  }
}

/** The page's hash without the token (and answer): what the address bar shows once the page
 * has read them, so the link is not left in the history or on screen. */
export const scrubbedHash = (page: AccountPage) => `#/${page}`;

/** Does the hash carry anything that must not stay in the address bar? */
export const carriesSecrets = (hash: string) => /[?&](token|answer)=/.test(hash);

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/** What is wrong with a new password typed twice, before the server scores it (null: send it).
 * Only the limits the API states; how strong it is stays the server's judgement. */
export function newPasswordProblem(password: string, again: string): string | null {
  if (password.length < PASSWORD_MIN) return `The password needs at least ${PASSWORD_MIN} characters.`;
  if (password.length > PASSWORD_MAX) return `The password can have at most ${PASSWORD_MAX} characters.`;
  if (password !== again) return "The two passwords are not the same.";
  return null;
}

/** The forgot-password request for what was typed: an email address or a username. */
export function forgotBody(typed: string): { email: string } | { username: string } | null {
  const text = typed.trim();
  if (!text) return null;
  return text.includes("@") ? { email: text } : { username: text };
}

/** A second-factor code as typed ("123 456", "abcd-efgh-ijkl"): null when it cannot be one
 * (6 digits, or a 12-character recovery code), else the text to send. */
export function mfaCode(typed: string): string | null {
  const text = typed.replace(/[\s-]/g, "");
  if (/^\d{6}$/.test(text)) return text;
  if (/^[A-Za-z2-7]{12}$/.test(text)) return text.toLowerCase();
  return null;
}

export type MfaMethod = "totp" | "recovery_code" | "email";

/** What the code field asks for, given the methods the server offers. */
export function mfaPrompt(methods: readonly string[]): string {
  if (methods.includes("email")) return "We emailed you a 6-digit code. Enter it to finish signing in.";
  return "Enter the 6-digit code from your authenticator app, or one of your recovery codes.";
}
