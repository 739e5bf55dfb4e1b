// Numbers and times for people. Pure.

export const count = (n: number) => n.toLocaleString("en-US");

export const percent = (share: number) => `${share.toFixed(2)} %`;

export function distance(km: number): string {
  return km >= 100 ? `${count(Math.round(km))} km` : `${km.toFixed(1)} km`;
}

export function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = seconds / 60;
  if (minutes < 90) return `${Math.round(minutes)} min`;
  const hours = minutes / 60;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} days`;
}

export function ago(iso: string | null, now: Date): string {
  if (!iso) return "never";
  const seconds = Math.max(0, (now.getTime() - new Date(iso).getTime()) / 1000);
  return `${duration(seconds)} ago`;
}

/** Text made safe to put inside HTML (popups are HTML strings). */
export function escapeHtml(text: string): string {
  const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return text.replace(/[&<>"']/g, (c) => entities[c]);
}
