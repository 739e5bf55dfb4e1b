// What a review changes in the flagged list, and which reviews a row still offers. Pure.
import type { FlaggedLogin, Review, ReviewedLogin } from "./api";

/** The list with the reviewed login's review (and verdict, which a review may lower). */
export function withReview(items: FlaggedLogin[], done: ReviewedLogin): FlaggedLogin[] {
  return items.map((item) =>
    item.id === done.id
      ? { ...item, review: done.review, reviewed_at: done.reviewed_at, verdict: (done.verdict as FlaggedLogin["verdict"]) ?? item.verdict }
      : item,
  );
}

/** "compromised" is final; a login found safe may still turn out compromised. */
export function reviewsOffered(review: Review | null): Review[] {
  if (review === "compromised") return [];
  if (review === "safe") return ["compromised"];
  return ["safe", "compromised"];
}

/** The rest of the list after `items`, without repeating a login already listed. */
export function appended(items: FlaggedLogin[], more: FlaggedLogin[]): FlaggedLogin[] {
  const listed = new Set(items.map((i) => i.id));
  return [...items, ...more.filter((i) => !listed.has(i.id))];
}
