import { describe, expect, it } from "vitest";
import { parseRoute } from "./admin";
import { carriesSecrets, forgotBody, mfaCode, mfaPrompt, newPasswordProblem, parseAccountRoute, scrubbedHash } from "./accountRoutes";
import { mfaChallenge, MfaRequired } from "./api";

const V = "ggv_" + "a".repeat(43);
const R = "ggr_" + "B-_9".repeat(10) + "xyz";
const F = "ggf_" + "c".repeat(43);

describe("parseAccountRoute", () => {
  it("reads each emailed link", () => {
    expect(parseAccountRoute(`#/verify-email?token=${V}`)).toEqual({ page: "verify-email", token: V });
    expect(parseAccountRoute(`#/reset-password?token=${R}`)).toEqual({ page: "reset-password", token: R });
    expect(parseAccountRoute(`#/login-feedback?token=${F}&answer=no`)).toEqual({ page: "login-feedback", token: F, answer: "no" });
    expect(parseAccountRoute(`#/login-feedback?answer=yes&token=${F}`)).toEqual({ page: "login-feedback", token: F, answer: "yes" });
    expect(parseAccountRoute("#/forgot-password")).toEqual({ page: "forgot-password" });
    expect(parseAccountRoute("/forgot-password/")).toEqual({ page: "forgot-password" });
  });

  it("refuses a token meant for another page, malformed or missing", () => {
    expect(parseAccountRoute(`#/reset-password?token=${V}`)).toEqual({ page: "reset-password", token: null });
    expect(parseAccountRoute(`#/verify-email?token=${F}`)).toEqual({ page: "verify-email", token: null });
    expect(parseAccountRoute("#/verify-email?token=ggv_")).toEqual({ page: "verify-email", token: null });
    expect(parseAccountRoute("#/verify-email?token=ggv_abc%20def<script>")).toEqual({ page: "verify-email", token: null });
    expect(parseAccountRoute(`#/verify-email?token=ggv_${"a".repeat(200)}`)).toEqual({ page: "verify-email", token: null });
    expect(parseAccountRoute("#/reset-password")).toEqual({ page: "reset-password", token: null });
  });

  it("keeps an answer only when it is yes or no", () => {
    expect(parseAccountRoute(`#/login-feedback?token=${F}&answer=maybe`)).toEqual({ page: "login-feedback", token: F, answer: null });
    expect(parseAccountRoute(`#/login-feedback?token=${F}`)).toEqual({ page: "login-feedback", token: F, answer: null });
  });

  it("leaves the dashboard's own routes alone", () => {
    for (const hash of ["", "#/", "#/users", "#/users?q=status:blocked", "#/users/0d6f7a4e-1c7e-4a47-9d1f-3c2e8f1a5b60", "#/verify-email/extra", "#/unknown"]) {
      expect(parseAccountRoute(hash)).toBeNull();
    }
    // …and the console's router sends the account pages to the map, never to a user.
    expect(parseRoute("#/reset-password?token=x")).toEqual({ view: "map" });
  });
});

describe("scrubbing the address bar", () => {
  it("drops the token and the answer", () => {
    expect(scrubbedHash("reset-password")).toBe("#/reset-password");
    expect(carriesSecrets(`#/login-feedback?token=${F}&answer=no`)).toBe(true);
    expect(carriesSecrets(`#/login-feedback?answer=no`)).toBe(true);
    expect(carriesSecrets(scrubbedHash("login-feedback"))).toBe(false);
  });
});

describe("newPasswordProblem", () => {
  it("asks for the length the API requires", () => {
    expect(newPasswordProblem("1234567", "1234567")).toMatch(/at least 8/);
    expect(newPasswordProblem("x".repeat(129), "x".repeat(129))).toMatch(/at most 128/);
  });

  it("asks for the same password twice", () => {
    expect(newPasswordProblem("correct horse battery", "correct horse batterY")).toMatch(/not the same/);
  });

  it("leaves the strength to the server", () => {
    expect(newPasswordProblem("password", "password")).toBeNull();
    expect(newPasswordProblem("x".repeat(128), "x".repeat(128))).toBeNull();
  });
});

describe("forgotBody", () => {
  it("sends an address as email and anything else as username", () => {
    expect(forgotBody("  ann@example.com ")).toEqual({ email: "ann@example.com" });
    expect(forgotBody("ann")).toEqual({ username: "ann" });
    expect(forgotBody("   ")).toBeNull();
  });
});

describe("mfaCode", () => {
  it("takes 6 digits or a recovery code however typed", () => {
    expect(mfaCode("123 456")).toBe("123456");
    expect(mfaCode(" 123-456 ")).toBe("123456");
    expect(mfaCode("K7QA-M2XP-4FFD")).toBe("k7qam2xp4ffd");
    expect(mfaCode("k7qa m2xp 4ffd")).toBe("k7qam2xp4ffd");
  });

  it("refuses what cannot be a code", () => {
    for (const typed of ["", "12345", "1234567", "12345a", "k7qa-m2xp-4ff", "k7qa-m2xp-4ff1"]) {
      expect(mfaCode(typed)).toBeNull();
    }
  });
});

describe("the second factor prompt", () => {
  it("says a code was emailed for the email method", () => {
    expect(mfaPrompt(["email"])).toMatch(/emailed/);
    expect(mfaPrompt(["totp", "recovery_code"])).toMatch(/authenticator app.*recovery/);
  });

  it("reads mfa_required answers and nothing else", () => {
    const challenge = mfaChallenge(401, { code: "mfa_required", mfa_token: "ggm_x", mfa_methods: ["totp", 3], expires_in: 300 });
    expect(challenge).toBeInstanceOf(MfaRequired);
    expect([challenge?.mfaToken, challenge?.methods, challenge?.expiresIn]).toEqual(["ggm_x", ["totp"], 300]);
    expect(mfaChallenge(401, { code: "invalid_credentials", detail: "no" })).toBeNull();
    expect(mfaChallenge(403, { code: "mfa_required", mfa_token: "ggm_x" })).toBeNull();
    expect(mfaChallenge(401, { code: "mfa_required" })).toBeNull();
    expect(mfaChallenge(401, null)).toBeNull();
  });
});
