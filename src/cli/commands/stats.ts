/** `orch stats`: outcome figures per group of runs, as a table, JSON or CSV, and the variants compared. */
import type { OrchContext } from '../../runtime/context.ts';
import { statsReport, type StatsQuery } from '../../runtime/stats.ts';
import { csv, duration, json, table, usd } from '../../core/format.ts';
import type { GroupStats, Interval, StatsReport } from '../../core/stats.ts';

export type StatsFormat = 'text' | 'json' | 'csv';

export async function statsCommand(ctx: OrchContext, q: StatsQuery, format: StatsFormat): Promise<string> {
  const report = await statsReport(ctx, q);
  if (format === 'json') return json(report);
  if (format === 'csv') return statsCsv(report);
  return statsText(report);
}

const counts = (m: Record<string, number>): string =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
const pct = (v: number) => `${Math.round(v * 100)}%`;
const fixed = (v: number | null, digits = 1) => (v === null ? '–' : v.toFixed(digits));
const range = (ci: Interval | null, fmt: (v: number) => string) =>
  ci ? ` [${fmt(ci[0])}–${fmt(ci[1])}]` : '';
const keyText = (v: string | null | undefined) => v ?? '–';

function firstPass(g: GroupStats): string {
  const f = g.first_pass;
  if (f.rate === null) return '–';
  return `${f.approved}/${f.reviewed} ${pct(f.rate)}${range(f.ci95, pct)}`;
}

function perDoneCost(g: GroupStats): string {
  const p = g.per_done_task;
  return p.cost_usd === null ? '–' : `${usd(p.cost_usd)}${range(p.cost_ci95, (v) => v.toFixed(4))}`;
}

export function statsText(r: StatsReport): string {
  const lines = [
    `runs started ${r.since ? `since ${r.since}` : 'at any time'} · ${r.project ? `project ${r.project}` : 'all projects'} · by ${r.by.join(', ') || 'nothing (totals)'}`,
  ];
  if (!r.groups.length) return [...lines, 'no runs'].join('\n');
  lines.push(
    '',
    table(
      [
        ...r.by.map((d) => d.toUpperCase()),
        'TASKS',
        'DONE',
        'ESCALATED',
        'RUNS',
        'OUTCOMES',
        'FIRST PASS',
        'ATTEMPTS',
        'COST/DONE',
        'TOKENS/DONE',
        'P50',
        'P90',
        'APPROVALS',
        'RETRIES',
        'MESSAGES',
      ],
      r.groups.map((g) => [
        ...r.by.map((d) => keyText(g.key[d])),
        g.tasks.total,
        g.tasks.done,
        g.tasks.escalated ? `${g.tasks.escalated} (${counts(g.tasks.escalated_by_reason)})` : '0',
        g.runs.total,
        counts(g.runs.outcomes),
        firstPass(g),
        fixed(g.attempts_to_done, 2),
        perDoneCost(g),
        g.per_done_task.tokens === null ? '–' : Math.round(g.per_done_task.tokens),
        duration(g.duration_ms.p50),
        duration(g.duration_ms.p90),
        g.interventions.approvals,
        g.interventions.retries,
        g.interventions.messages,
      ]),
    ),
  );
  for (const c of r.comparisons) {
    const setup = Object.entries(c.key)
      .map(([d, v]) => `${d} ${keyText(v)}`)
      .join(', ');
    lines.push(
      '',
      `${c.a} vs ${c.b}${setup ? ` (${setup})` : ''}:`,
      `  ${c.approval.summary}`,
      `  ${c.cost_per_done_task.summary}`,
    );
  }
  return lines.join('\n');
}

/** One row per group; intervals as low and high columns; mixes as `name n; name n`. */
export function statsCsv(r: StatsReport): string {
  const mix = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ');
  return csv(
    [
      ...r.by,
      'tasks',
      'done',
      'escalated',
      'escalated_by_reason',
      'runs',
      'outcomes',
      'first_pass_reviewed',
      'first_pass_approved',
      'first_pass_rate',
      'first_pass_ci_low',
      'first_pass_ci_high',
      'attempts_to_done',
      'cost_per_done_task_usd',
      'cost_ci_low',
      'cost_ci_high',
      'tokens_per_done_task',
      'p50_ms',
      'p90_ms',
      'approvals',
      'retries',
      'messages',
    ],
    r.groups.map((g) => [
      ...r.by.map((d) => g.key[d] ?? null),
      g.tasks.total,
      g.tasks.done,
      g.tasks.escalated,
      mix(g.tasks.escalated_by_reason),
      g.runs.total,
      mix(g.runs.outcomes),
      g.first_pass.reviewed,
      g.first_pass.approved,
      g.first_pass.rate,
      g.first_pass.ci95?.[0] ?? null,
      g.first_pass.ci95?.[1] ?? null,
      g.attempts_to_done,
      g.per_done_task.cost_usd,
      g.per_done_task.cost_ci95?.[0] ?? null,
      g.per_done_task.cost_ci95?.[1] ?? null,
      g.per_done_task.tokens,
      g.duration_ms.p50,
      g.duration_ms.p90,
      g.interventions.approvals,
      g.interventions.retries,
      g.interventions.messages,
    ]),
  );
}
