/** Text formats shared by the CLI, the notifications and the API: tables, durations, money, JSON. Pure. */
import { modelEffortLabel } from './model.ts';
import { terminalSafeJson } from './text.ts';

/** Indented JSON for people and scripts; no raw character a terminal acts on (DEL, C1 are escaped). */
export const json = (value: unknown): string => terminalSafeJson(value, 2);

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export const usd = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : `$${v.toFixed(4)}`;

export const label = (model: string | null, effort: string | null): string =>
  modelEffortLabel(model, effort) ?? '–';

/** A plain text table with left-aligned columns. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** RFC 4180 CSV: a header and rows, fields quoted when they hold a comma, a quote or a line break. */
export function csv(headers: string[], rows: (string | number | null)[][]): string {
  const field = (v: string | number | null) => {
    const s = v === null ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [headers, ...rows].map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}
