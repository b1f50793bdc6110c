/**
 * Outcome analytics: which agent setup (role, adapter, model, effort, A/B
 * variant) gets tasks done, first time, at what cost. The store counts in the
 * database (`store/stats-store.ts`); this module turns its rows into one
 * figure set per group, with 95 % confidence intervals (Wilson for the
 * first-pass approval rate, Student's t for the cost per done task), and
 * compares the variants of a role. Pure: no I/O, `now` passed in.
 */

/** What runs can be grouped by; `role` is the run's role (the `agent` column). */
export const STATS_DIMENSIONS = ['role', 'adapter', 'model', 'effort', 'variant'] as const;
export type StatsDimension = (typeof STATS_DIMENSIONS)[number];
export const DEFAULT_STATS_BY: readonly StatsDimension[] = ['role', 'model', 'effort'];
export const DEFAULT_STATS_SINCE = '30d';

/** A group's values of the dimensions asked for (null: runs without one, e.g. no variant). */
export type GroupKey = Partial<Record<StatsDimension, string | null>>;

/** Human interventions, by the event kind that records them. */
export const INTERVENTION_KINDS = {
  approved: 'approvals',
  task_retried: 'retries',
  human_message: 'messages',
} as const;
export type InterventionKind = keyof typeof INTERVENTION_KINDS;

// ----------------------------------------------------------- rows from the store

/** Runs of a group with one outcome (`running` for runs in flight). */
export interface RunOutcomeRow {
  key: GroupKey;
  outcome: string;
  runs: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}
/** Nearest-rank percentiles of the group's finished runs' wall time. */
export interface RunDurationRow {
  key: GroupKey;
  finished: number;
  p50_ms: number | null;
  p90_ms: number | null;
}
/** Tasks of a group (a task belongs to every group one of its runs is in) by status and reason. */
export interface TaskOutcomeRow {
  key: GroupKey;
  status: string;
  terminal_reason: string | null;
  tasks: number;
  /** Attempts recorded for those tasks, all of them. */
  attempts: number;
  /** Those tasks with at least one attempt. */
  tasks_with_attempts: number;
}
/** The group's runs on its done tasks: per task summed, then over the tasks (with squares, for the spread). */
export interface DoneCostRow {
  key: GroupKey;
  tasks: number;
  cost_usd: number;
  cost_usd_sq: number;
  tokens: number;
}
/** First attempts whose development or judging run is in the group, and how many were approved. */
export interface FirstPassRow {
  key: GroupKey;
  reviewed: number;
  approved: number;
}
export interface InterventionRow {
  key: GroupKey;
  kind: string;
  events: number;
}
/** Cumulative counts of finished runs at or under each bound, for a Prometheus histogram. */
export interface DurationBucketRow {
  key: GroupKey;
  /** One count per bound, in the order of the bounds asked for. */
  cumulative: number[];
  count: number;
  sum_s: number;
}

export interface StatsRows {
  runs: RunOutcomeRow[];
  durations: RunDurationRow[];
  tasks: TaskOutcomeRow[];
  doneCosts: DoneCostRow[];
  firstPass: FirstPassRow[];
  interventions: InterventionRow[];
}

// ------------------------------------------------------------------- figures

export type Interval = [low: number, high: number];

export interface GroupStats {
  key: GroupKey;
  tasks: { total: number; done: number; escalated: number; escalated_by_reason: Record<string, number> };
  runs: {
    total: number;
    /** Runs by outcome: ok, failed, timeout, …, and `running` for those in flight. */
    outcomes: Record<string, number>;
    input_tokens: number;
    output_tokens: number;
    cost_usd: number;
  };
  first_pass: { reviewed: number; approved: number; rate: number | null; ci95: Interval | null };
  /** Mean attempts of the done tasks that went through the build loop. */
  attempts_to_done: number | null;
  per_done_task: { cost_usd: number | null; cost_ci95: Interval | null; tokens: number | null };
  duration_ms: { p50: number | null; p90: number | null };
  interventions: { approvals: number; retries: number; messages: number };
}

export interface Difference {
  /** a − b: percentage points of approval rate (0..1 scale), or USD per done task. */
  difference: number | null;
  ci95: Interval | null;
  /** The interval leaves out 0: at 95 % the two differ. */
  significant: boolean;
  /** One sentence saying which is better, or that the difference is not yet significant. */
  summary: string;
}

/** Two variants of the same setup (every other dimension equal), compared. */
export interface VariantComparison {
  /** The dimensions other than `variant` the two share. */
  key: GroupKey;
  a: string;
  b: string;
  approval: Difference;
  cost_per_done_task: Difference;
}

export interface StatsReport {
  project: string | null;
  /** Runs started at or after this instant count; null: all history. */
  since: string | null;
  by: StatsDimension[];
  groups: GroupStats[];
  /** Only when grouped by variant. */
  comparisons: VariantComparison[];
}

// ------------------------------------------------------------------- parsing

/** `role,model` → the dimensions, or the first unknown name; empty → none (totals only). */
export function parseStatsBy(text: string): StatsDimension[] | { unknown: string } {
  const out: StatsDimension[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (!(STATS_DIMENSIONS as readonly string[]).includes(name)) return { unknown: name };
    if (!out.includes(name as StatsDimension)) out.push(name as StatsDimension);
  }
  return out;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * `30d` (also `m`, `h`, `w`) before `now`, an ISO date or instant, or `all`
 * (null: no lower bound). Anything else is null with `ok: false`.
 */
export function parseSince(text: string, now: Date): { ok: true; since: string | null } | { ok: false } {
  const t = text.trim();
  if (t === 'all') return { ok: true, since: null };
  const rel = /^(\d+)([mhdw])$/.exec(t);
  if (rel)
    return { ok: true, since: new Date(now.getTime() - Number(rel[1]) * UNIT_MS[rel[2]!]!).toISOString() };
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (Number.isFinite(ms)) return { ok: true, since: new Date(ms).toISOString() };
  }
  return { ok: false };
}

// ---------------------------------------------------------------- statistics

/** The normal quantile of 0.975: a two-sided 95 % interval. */
const Z95 = 1.959963984540054;

/** Student's t quantile of 0.975 for df 1..30 (larger df: the Cornish–Fisher expansion). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
  2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t(0.975, df), df rounded down (a wider, safer interval for a fractional Welch df). */
export function tQuantile975(df: number): number {
  const d = Math.max(1, Math.floor(df));
  if (d <= T975.length) return T975[d - 1]!;
  const z = Z95;
  return (
    z +
    (z ** 3 + z) / (4 * d) +
    (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * d ** 2) +
    (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * d ** 3)
  );
}

/** Wilson's score interval of a proportion `x / n` at 95 %; null when n is 0. */
export function wilson(x: number, n: number): Interval | null {
  if (n <= 0) return null;
  const p = x / n;
  const z2 = Z95 * Z95;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (Z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Mean, sample variance and count from a sum and a sum of squares. */
export interface Moments {
  n: number;
  mean: number;
  variance: number;
}
const moments = (n: number, sum: number, sumSq: number): Moments => {
  const mean = n ? sum / n : 0;
  // Rounding can make a zero spread a hair negative.
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
  return { n, mean, variance };
};

/** The 95 % t interval of a mean; null below two values. */
export function meanInterval(m: Moments): Interval | null {
  if (m.n < 2) return null;
  const half = (tQuantile975(m.n - 1) * Math.sqrt(m.variance)) / Math.sqrt(m.n);
  return [m.mean - half, m.mean + half];
}

/** Newcombe's interval (from the two Wilson intervals) of the difference of two proportions. */
export function proportionDifference(xa: number, na: number, xb: number, nb: number): Interval | null {
  const wa = wilson(xa, na);
  const wb = wilson(xb, nb);
  if (!wa || !wb) return null;
  const pa = xa / na;
  const pb = xb / nb;
  const d = pa - pb;
  return [
    d - Math.sqrt((pa - wa[0]) ** 2 + (wb[1] - pb) ** 2),
    d + Math.sqrt((wa[1] - pa) ** 2 + (pb - wb[0]) ** 2),
  ];
}

/** Welch's interval of the difference of two means (unequal variances); null below two values each. */
export function meanDifference(a: Moments, b: Moments): Interval | null {
  if (a.n < 2 || b.n < 2) return null;
  const d = a.mean - b.mean;
  const va = a.variance / a.n;
  const vb = b.variance / b.n;
  const se = Math.sqrt(va + vb);
  // No spread on either side: the difference is what it is.
  if (se === 0) return [d, d];
  const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1));
  const half = tQuantile975(df) * se;
  return [d - half, d + half];
}

// ------------------------------------------------------------------ assembly

const keyId = (key: GroupKey, dims: readonly StatsDimension[]): string =>
  JSON.stringify(dims.map((d) => key[d] ?? null));

const emptyGroup = (key: GroupKey): GroupStats => ({
  key,
  tasks: { total: 0, done: 0, escalated: 0, escalated_by_reason: {} },
  runs: { total: 0, outcomes: {}, input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  first_pass: { reviewed: 0, approved: 0, rate: null, ci95: null },
  attempts_to_done: null,
  per_done_task: { cost_usd: null, cost_ci95: null, tokens: null },
  duration_ms: { p50: null, p90: null },
  interventions: { approvals: 0, retries: 0, messages: 0 },
});

/** One figure set per group, groups in order of their key. */
export function assembleGroups(rows: StatsRows, by: readonly StatsDimension[]): GroupStats[] {
  const groups = new Map<string, GroupStats>();
  const group = (key: GroupKey): GroupStats => {
    const id = keyId(key, by);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = emptyGroup(Object.fromEntries(by.map((d) => [d, key[d] ?? null])))));
    return g;
  };
  for (const r of rows.runs) {
    const g = group(r.key);
    g.runs.total += r.runs;
    g.runs.outcomes[r.outcome] = (g.runs.outcomes[r.outcome] ?? 0) + r.runs;
    g.runs.input_tokens += r.input_tokens;
    g.runs.output_tokens += r.output_tokens;
    g.runs.cost_usd += r.cost_usd;
  }
  for (const r of rows.durations) {
    const g = group(r.key);
    g.duration_ms = { p50: r.p50_ms, p90: r.p90_ms };
  }
  const attempts = new Map<string, { attempts: number; tasks: number }>();
  for (const r of rows.tasks) {
    const g = group(r.key);
    g.tasks.total += r.tasks;
    if (r.status === 'done') {
      g.tasks.done += r.tasks;
      const a = attempts.get(keyId(r.key, by)) ?? { attempts: 0, tasks: 0 };
      a.attempts += r.attempts;
      a.tasks += r.tasks_with_attempts;
      attempts.set(keyId(r.key, by), a);
    }
    if (r.status === 'escalated') {
      g.tasks.escalated += r.tasks;
      const reason = r.terminal_reason ?? 'unknown';
      g.tasks.escalated_by_reason[reason] = (g.tasks.escalated_by_reason[reason] ?? 0) + r.tasks;
    }
  }
  for (const [id, a] of attempts) {
    const g = groups.get(id)!;
    g.attempts_to_done = a.tasks ? a.attempts / a.tasks : null;
  }
  for (const r of rows.doneCosts) {
    const m = moments(r.tasks, r.cost_usd, r.cost_usd_sq);
    group(r.key).per_done_task = {
      cost_usd: r.tasks ? m.mean : null,
      cost_ci95: meanInterval(m),
      tokens: r.tasks ? r.tokens / r.tasks : null,
    };
  }
  for (const r of rows.firstPass) {
    const g = group(r.key);
    g.first_pass = {
      reviewed: r.reviewed,
      approved: r.approved,
      rate: r.reviewed ? r.approved / r.reviewed : null,
      ci95: wilson(r.approved, r.reviewed),
    };
  }
  for (const r of rows.interventions) {
    const name = INTERVENTION_KINDS[r.kind as InterventionKind];
    if (name) group(r.key).interventions[name] += r.events;
  }
  const order = (k: GroupKey) => by.map((d) => k[d] ?? '\uffff').join('\u0000');
  return [...groups.values()].sort((a, b) => order(a.key).localeCompare(order(b.key)));
}

const pct = (v: number) => `${Math.round(v * 100)}%`;
const points = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(Math.round(v * 100))}`;
const dollars = (v: number) => `${v >= 0 ? '+' : '−'}$${Math.abs(v).toFixed(4)}`;

function approvalDifference(a: GroupStats, b: GroupStats, an: string, bn: string): Difference {
  const fa = a.first_pass;
  const fb = b.first_pass;
  const ci = proportionDifference(fa.approved, fa.reviewed, fb.approved, fb.reviewed);
  if (!ci || fa.rate === null || fb.rate === null)
    return {
      difference: null,
      ci95: null,
      significant: false,
      summary: `first-pass approval: not enough data yet (${an} ${fa.reviewed} first reviews, ${bn} ${fb.reviewed})`,
    };
  const d = fa.rate - fb.rate;
  const significant = ci[0] > 0 || ci[1] < 0;
  const range = `${pct(fa.rate)} vs ${pct(fb.rate)}, difference ${points(d)} points, 95% CI ${points(ci[0])} to ${points(ci[1])}`;
  return {
    difference: d,
    ci95: ci,
    significant,
    summary: significant
      ? `first-pass approval: ${d > 0 ? an : bn} is approved first time more often (${range})`
      : `first-pass approval: the difference is not yet significant (${range})`,
  };
}

function costDifference(a: Moments | undefined, b: Moments | undefined, an: string, bn: string): Difference {
  const ci = a && b ? meanDifference(a, b) : null;
  if (!a || !b || !ci)
    return {
      difference: null,
      ci95: null,
      significant: false,
      summary: `cost per done task: not enough data yet (${an} ${a?.n ?? 0} done tasks, ${bn} ${b?.n ?? 0}; two each needed)`,
    };
  const d = a.mean - b.mean;
  const significant = ci[0] > 0 || ci[1] < 0;
  const range = `$${a.mean.toFixed(4)} vs $${b.mean.toFixed(4)}, difference ${dollars(d)}, 95% CI ${dollars(ci[0])} to ${dollars(ci[1])}`;
  return {
    difference: d,
    ci95: ci,
    significant,
    summary: significant
      ? `cost per done task: ${d < 0 ? an : bn} costs less (${range})`
      : `cost per done task: the difference is not yet significant (${range})`,
  };
}

/**
 * Every pair of variant groups that agree on all other dimensions, compared on
 * first-pass approval and cost per done task. Groups without a variant are
 * left out. Needs the same rows as {@link assembleGroups}.
 */
export function compareVariants(
  groups: readonly GroupStats[],
  rows: Pick<StatsRows, 'doneCosts'>,
  by: readonly StatsDimension[],
): VariantComparison[] {
  if (!by.includes('variant')) return [];
  const others = by.filter((d) => d !== 'variant');
  const costs = new Map(
    rows.doneCosts.map((r) => [keyId(r.key, by), moments(r.tasks, r.cost_usd, r.cost_usd_sq)] as const),
  );
  const bySetup = new Map<string, GroupStats[]>();
  for (const g of groups) {
    if (!g.key.variant) continue;
    const id = keyId(g.key, others);
    bySetup.set(id, [...(bySetup.get(id) ?? []), g]);
  }
  const out: VariantComparison[] = [];
  for (const list of bySetup.values()) {
    const sorted = [...list].sort((x, y) => x.key.variant!.localeCompare(y.key.variant!));
    for (let i = 0; i < sorted.length; i += 1)
      for (let j = i + 1; j < sorted.length; j += 1) {
        const a = sorted[i]!;
        const b = sorted[j]!;
        const an = a.key.variant!;
        const bn = b.key.variant!;
        out.push({
          key: Object.fromEntries(others.map((d) => [d, a.key[d] ?? null])),
          a: an,
          b: bn,
          approval: approvalDifference(a, b, an, bn),
          cost_per_done_task: costDifference(
            costs.get(keyId(a.key, by)),
            costs.get(keyId(b.key, by)),
            an,
            bn,
          ),
        });
      }
  }
  return out;
}
