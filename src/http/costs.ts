/** Spend per day, model and role: a pure summary of run figures for the costs page. */
import type { RunFigures } from '../store/report-store.ts';

export interface SpendRow {
  runs: number;
  input_tokens: number;
  output_tokens: number;
  /** Sum of reported costs; runs without one add nothing. */
  cost_usd: number;
}

export interface CostReport {
  since: string;
  days: number;
  totals: SpendRow;
  by_day: (SpendRow & { day: string })[];
  by_model: (SpendRow & { model: string })[];
  by_role: (SpendRow & { role: string })[];
}

const empty = (): SpendRow => ({ runs: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 });

function add(row: SpendRow, r: RunFigures): void {
  row.runs += 1;
  row.input_tokens += r.input_tokens ?? 0;
  row.output_tokens += r.output_tokens ?? 0;
  row.cost_usd += r.cost_usd ?? 0;
}

/** The first instant of the UTC day `days - 1` days before `now`'s. */
export function reportStart(now: Date, days: number): Date {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  d.setUTCDate(d.getUTCDate() - (days - 1));
  return d;
}

/** Runs grouped by UTC day of their start (every day of the window, zeros included), model and role. */
export function costReport(runs: RunFigures[], days: number, now: Date): CostReport {
  const start = reportStart(now, days);
  const byDay = new Map<string, SpendRow>();
  for (let i = 0; i < days; i++) {
    const d = new Date(start);
    d.setUTCDate(d.getUTCDate() + i);
    byDay.set(d.toISOString().slice(0, 10), empty());
  }
  const byModel = new Map<string, SpendRow>();
  const byRole = new Map<string, SpendRow>();
  const totals = empty();
  for (const r of runs) {
    if (!r.started_at) continue;
    const day = byDay.get(r.started_at.slice(0, 10));
    if (!day) continue;
    add(day, r);
    add(totals, r);
    const model = r.model || 'unknown';
    if (!byModel.has(model)) byModel.set(model, empty());
    add(byModel.get(model)!, r);
    if (!byRole.has(r.agent)) byRole.set(r.agent, empty());
    add(byRole.get(r.agent)!, r);
  }
  const desc = (a: SpendRow, b: SpendRow) => b.cost_usd - a.cost_usd || b.runs - a.runs;
  return {
    since: start.toISOString(),
    days,
    totals,
    by_day: [...byDay].map(([day, row]) => ({ day, ...row })),
    by_model: [...byModel].map(([model, row]) => ({ model, ...row })).sort(desc),
    by_role: [...byRole].map(([role, row]) => ({ role, ...row })).sort(desc),
  };
}
