import { describe, expect, it } from "vitest";
import { filterParams, isQueryProblem, queryString, toProblem } from "./api";

describe("filterParams", () => {
  it("leaves defaults out", () => {
    expect(filterParams({ outcome: "any", q: "  ", by: "events", basis: "all" })).toEqual({});
  });

  it("sends every chosen filter", () => {
    const params = filterParams({ from: "2026-01-01", to: "2026-01-31", outcome: "success", q: " role:admin ", by: "users", basis: "last_login" });
    expect(params).toEqual({ from: "2026-01-01", to: "2026-01-31", outcome: "success", q: "role:admin", by: "users", basis: "last_login" });
  });
});

describe("queryString", () => {
  it("encodes values and skips empty ones", () => {
    expect(queryString({ q: 'user_metadata.tier:"a b"', zoom: 3, bbox: undefined, x: "" })).toBe("?q=user_metadata.tier%3A%22a+b%22&zoom=3");
    expect(queryString({})).toBe("");
  });
});

describe("toProblem", () => {
  it("reads a problem body", () => {
    const p = toProblem(400, { code: "invalid_query", detail: "unexpected ( (at position 5)", position: 5 });
    expect(p).toEqual({ status: 400, code: "invalid_query", detail: "unexpected ( (at position 5)", parameter: undefined, position: 5 });
    expect(isQueryProblem(p)).toBe(true);
  });

  it("makes one from anything else", () => {
    expect(toProblem(502, "<html>")).toEqual({ status: 502, code: "error", detail: "The server answered 502." });
    expect(isQueryProblem(toProblem(400, { code: "invalid_parameter", parameter: "zoom", detail: "zoom: bad" }))).toBe(false);
  });
});
