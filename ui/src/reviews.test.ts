import { describe, expect, it } from "vitest";
import type { FlaggedLogin } from "./api";
import { appended, reviewsOffered, withReview } from "./reviews";

const login = (id: number): FlaggedLogin => ({
  id,
  event_uuid: `e${id}`,
  occurred_at: "2026-06-01T09:00:00Z",
  source: "login_events",
  subject: "s",
  user_id: null,
  username: null,
  success: true,
  verdict: "impossible",
  review: null,
  reviewed_at: null,
  origin: null,
  destination: null,
  distance_km: null,
  elapsed_seconds: null,
  speed_mph: null,
  speed_kmh: null,
});

describe("reviews", () => {
  it("marks only the reviewed row", () => {
    const after = withReview([login(1), login(2)], { id: 2, verdict: "impossible", review: "safe", reviewed_at: "2026-06-02T00:00:00Z" });
    expect(after.map((i) => i.review)).toEqual([null, "safe"]);
    expect(after[1].reviewed_at).toBe("2026-06-02T00:00:00Z");
  });

  it("offers what may still be said", () => {
    expect(reviewsOffered(null)).toEqual(["safe", "compromised"]);
    expect(reviewsOffered("safe")).toEqual(["compromised"]);
    expect(reviewsOffered("compromised")).toEqual([]);
  });

  it("pages on without repeating a row", () => {
    expect(appended([login(3), login(2)], [login(2), login(1)]).map((i) => i.id)).toEqual([3, 2, 1]);
  });
});
