/** Display helpers; durations, money and `model · effort` are the CLI's own, so both read the same. */
export { duration, usd } from '../../src/core/format.ts';
export { modelEffortLabel } from '../../src/core/model.ts';

export const tokens = (n: number | null | undefined): string => {
  if (n === null || n === undefined) return '–';
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
};

/** `14:03:12` today, `Mar 3 14:03` otherwise. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
    : d.toLocaleString([], {
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      });
}

/** Milliseconds between two instants, the second defaulting to `now`. */
export const elapsedMs = (from: string | null, to: string | null, now: number): number | null =>
  from ? (to ? Date.parse(to) : now) - Date.parse(from) : null;
