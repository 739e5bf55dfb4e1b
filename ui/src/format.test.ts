import { describe, expect, it } from "vitest";
import { ago, distance, duration, escapeHtml, percent } from "./format";
import { presetRange, rangeProblem } from "./timeRange";

describe("format", () => {
  it("shares, distances and durations", () => {
    expect(percent(6.254)).toBe("6.25 %");
    expect(distance(5570.4)).toBe("5,570 km");
    expect(distance(42.26)).toBe("42.3 km");
    expect(duration(45)).toBe("45 s");
    expect(duration(3600)).toBe("60 min");
    expect(duration(7200)).toBe("2.0 h");
    expect(duration(3 * 86400)).toBe("3.0 days");
    expect(ago(null, new Date())).toBe("never");
    expect(ago("2026-01-01T00:00:00Z", new Date("2026-01-01T00:00:30Z"))).toBe("30 s ago");
  });

  it("escapes HTML", () => {
    expect(escapeHtml(`<b a="x">&'`)).toBe("&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
  });
});

describe("time ranges", () => {
  const today = new Date("2026-03-10T15:00:00Z");
  it("presets end today, inclusive", () => {
    expect(presetRange("1", today)).toEqual({ from: "2026-03-10", to: "2026-03-10" });
    expect(presetRange("7", today)).toEqual({ from: "2026-03-04", to: "2026-03-10" });
    expect(presetRange("30", today)).toEqual({ from: "2026-02-09", to: "2026-03-10" });
    expect(presetRange("all", today)).toEqual({});
  });

  it("custom ranges are checked", () => {
    expect(presetRange("custom", today, { from: "2026-01-01" })).toEqual({ from: "2026-01-01" });
    expect(rangeProblem({ from: "2026-02-01", to: "2026-01-01" })).toMatch(/after/);
    expect(rangeProblem({ from: "2026-01-01", to: "2026-02-01" })).toBeNull();
  });
});
