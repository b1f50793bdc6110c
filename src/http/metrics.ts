/**
 * `/metrics` for Prometheus. The domain figures are derived from the store at
 * scrape time (one snapshot per scrape), not counted in this process: runs,
 * tokens and cost are written by whichever process ran the agent, survive
 * restarts, and so stay right with several `orch worker`s or an `orch run`
 * beside `orch serve`. Only the HTTP request counter and the optional
 * process metrics are in-process. The names are listed in docs/api.md.
 */
import { elapsedMs } from '../core/stages.ts';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type HistogramConfiguration,
  type MetricType,
} from 'prom-client';
import type { OrchContext } from '../runtime/context.ts';
import type { ReportStore, RunFigures } from '../store/report-store.ts';
import {
  INTERVENTION_KINDS,
  type DurationBucketRow,
  type GroupKey,
  type StatsDimension,
  type StatsRows,
} from '../core/stats.ts';
import { loopDelaySnapshot, type LoopDelaySnapshot } from '../runtime/loop-watchdog.ts';

/** Terminal reasons that mean a budget stopped the build loop. */
export const BUDGET_REASONS = ['budget_exhausted', 'max_attempts'] as const;

export const RUN_DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 5400];

/** The outcome metrics' labels: an agent setup. */
const OUTCOME_BY: readonly StatsDimension[] = ['role', 'model', 'effort', 'variant'];
const OUTCOME_LABELS = ['role', 'model', 'effort', 'variant'] as const;
type OutcomeLabel = (typeof OUTCOME_LABELS)[number];

/** A group's labels: unknown for a run without a stamp, an empty variant for runs without one. */
const setupLabels = (key: GroupKey): Record<OutcomeLabel, string> => ({
  role: key.role ?? 'unknown',
  model: key.model ?? 'unknown',
  effort: key.effort ?? 'unknown',
  variant: key.variant ?? '',
});

interface Outcomes extends Omit<StatsRows, 'durations'> {
  durations: DurationBucketRow[];
}

/** All history, every project, by setup: the store's stats statements, one of each per scrape. */
async function loadOutcomes(ctx: OrchContext): Promise<Outcomes> {
  const s = ctx.store.stats;
  const f = { by: OUTCOME_BY };
  return s.rowsWith(f, s.runDurationBuckets(f, RUN_DURATION_BUCKETS_S));
}

/**
 * A histogram whose buckets the database counted. prom-client's Histogram
 * counts observations made in this process; observing every run at each
 * scrape would carry 100 k rows out of the database instead of one per setup.
 */
class StoredHistogram extends Histogram<OutcomeLabel> {
  private readonly metricName: string;
  private readonly helpText: string;
  private readonly bounds: readonly number[];
  private readonly load: () => Promise<DurationBucketRow[]>;
  constructor(
    cfg: HistogramConfiguration<OutcomeLabel> & { buckets: number[] },
    load: () => Promise<DurationBucketRow[]>,
  ) {
    super(cfg);
    this.metricName = cfg.name;
    this.helpText = cfg.help;
    this.bounds = cfg.buckets;
    this.load = load;
  }

  override async get(): ReturnType<Histogram<OutcomeLabel>['get']> {
    const name = this.metricName;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const row of await this.load()) {
      const labels = setupLabels(row.key);
      row.cumulative.forEach((n, i) =>
        values.push({ labels: { ...labels, le: this.bounds[i]! }, value: n, metricName: `${name}_bucket` }),
      );
      values.push({ labels: { ...labels, le: '+Inf' }, value: row.count, metricName: `${name}_bucket` });
      values.push({ labels, value: row.sum_s, metricName: `${name}_sum` });
      values.push({ labels, value: row.count, metricName: `${name}_count` });
    }
    return {
      name,
      help: this.helpText,
      // The registry writes the type as given: prom-client's own metrics carry the string.
      type: 'histogram' as unknown as MetricType,
      aggregator: 'sum',
      collect: () => {},
      values: values as never,
    };
  }

  /** What the registry reads for the text format when a metric has it (prom-client's Histogram does). */
  getForPromString(): ReturnType<Histogram<OutcomeLabel>['get']> {
    return this.get();
  }
}

interface Snapshot {
  outcomes: Outcomes;
  runs: RunFigures[];
  gates: Awaited<ReturnType<ReportStore['gateCounts']>>;
  escalations: Record<string, unknown>[];
  reaped: Record<string, unknown>[];
  tasks: Awaited<ReturnType<ReportStore['taskCounts']>>;
  queued: number;
  runningAgents: number;
}

async function loadSnapshot(ctx: OrchContext): Promise<Snapshot> {
  const [outcomes, runs, gates, escalations, reaped, tasks, queued, running] = await Promise.all([
    loadOutcomes(ctx),
    ctx.store.reports.runFigures(),
    ctx.store.reports.gateCounts(),
    ctx.store.reports.eventPayloads('escalated'),
    ctx.store.reports.eventPayloads('run_reaped'),
    ctx.store.reports.taskCounts(),
    ctx.store.countJobs('queued'),
    ctx.store.getRunningAgents(),
  ]);
  return { outcomes, runs, gates, escalations, reaped, tasks, queued, runningAgents: running.length };
}

const str = (v: unknown, fallback: string): string => (typeof v === 'string' && v ? v : fallback);

export interface Metrics {
  registry: Registry;
  /** The exposition text; scrapes run one at a time, each from one fresh snapshot of the store. */
  scrape(): Promise<string>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
}

export function createMetrics(ctx: OrchContext, opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  let current: Promise<Snapshot> | null = null;
  const snapshot = (): Promise<Snapshot> => (current ??= loadSnapshot(ctx));
  // The event loop's delay, taken once per scrape: taking it starts the next window.
  let loop: LoopDelaySnapshot | null | undefined;
  const loopDelay = (): LoopDelaySnapshot | null =>
    loop === undefined ? (loop = loopDelaySnapshot()) : loop;
  let queue: Promise<unknown> = Promise.resolve();
  const scrape = (): Promise<string> => {
    const next = queue.then(async () => {
      current = null;
      loop = undefined;
      try {
        return await registry.metrics();
      } finally {
        current = null;
        loop = undefined;
      }
    });
    queue = next.catch(() => {});
    return next;
  };
  const registers = [registry];

  new Counter({
    name: 'orch_runs_total',
    help: 'Finished agent runs by role and outcome (ok, failed, timeout, stalled, killed, interrupted, reaped, …).',
    labelNames: ['role', 'outcome'] as const,
    registers,
    async collect() {
      const { runs } = await snapshot();
      this.reset();
      for (const r of runs)
        if (r.status !== 'running') this.inc({ role: r.agent, outcome: str(r.outcome, 'unknown') });
    },
  });

  new Histogram({
    name: 'orch_run_duration_seconds',
    help: 'Wall time of finished agent runs, by role.',
    labelNames: ['role'] as const,
    buckets: RUN_DURATION_BUCKETS_S,
    registers,
    async collect() {
      const { runs } = await snapshot();
      this.reset();
      for (const r of runs) {
        const ms = elapsedMs(r);
        if (ms !== null) this.observe({ role: r.agent }, ms / 1000);
      }
    },
  });

  new Counter({
    name: 'orch_tokens_total',
    help: 'Tokens reported by agent runs, by model, role and direction (input, output).',
    labelNames: ['model', 'role', 'direction'] as const,
    registers,
    async collect() {
      const { runs } = await snapshot();
      this.reset();
      for (const r of runs) {
        const model = str(r.model, 'unknown');
        if (r.input_tokens) this.inc({ model, role: r.agent, direction: 'input' }, r.input_tokens);
        if (r.output_tokens) this.inc({ model, role: r.agent, direction: 'output' }, r.output_tokens);
      }
    },
  });

  new Counter({
    name: 'orch_cost_usd_total',
    help: 'USD cost reported by agent runs, by model and role (runs without a reported cost add nothing).',
    labelNames: ['model', 'role'] as const,
    registers,
    async collect() {
      const { runs } = await snapshot();
      this.reset();
      for (const r of runs)
        if (r.cost_usd !== null) this.inc({ model: str(r.model, 'unknown'), role: r.agent }, r.cost_usd);
    },
  });

  new Gauge({
    name: 'orch_queue_depth',
    help: 'Jobs waiting in the queue (including those waiting for a retry backoff).',
    registers,
    async collect() {
      this.set((await snapshot()).queued);
    },
  });

  new Gauge({
    name: 'orch_running_agents',
    help: 'Agents in flight (jobs claimed with a live run), across all workers.',
    registers,
    async collect() {
      this.set((await snapshot()).runningAgents);
    },
  });

  new Gauge({
    name: 'orch_adapter_paused_until_seconds',
    help: 'Adapters paused by a provider usage limit: the Unix time dispatch for them resumes, by adapter and credential (absent when not paused).',
    labelNames: ['adapter', 'credential'] as const,
    registers,
    async collect() {
      this.reset();
      for (const p of await ctx.store.pauses.active())
        this.set(
          { adapter: p.adapter, credential: p.credential || 'default' },
          Date.parse(p.until_at) / 1000,
        );
    },
  });

  new Counter({
    name: 'orch_reaped_runs_total',
    help: 'Runs finalized by the reaper or at recovery, by outcome (reaped, interrupted) and whether a process group had to be killed.',
    labelNames: ['outcome', 'killed'] as const,
    registers,
    async collect() {
      const { reaped } = await snapshot();
      this.reset();
      for (const p of reaped)
        this.inc({ outcome: str(p.outcome, 'unknown'), killed: String(p.killed === true) });
    },
  });

  new Counter({
    name: 'orch_gate_results_total',
    help: 'Quality gate results by gate, stage and result (passed, failed).',
    labelNames: ['gate', 'stage', 'result'] as const,
    registers,
    async collect() {
      const { gates } = await snapshot();
      this.reset();
      for (const g of gates)
        this.inc({ gate: g.name, stage: g.stage, result: g.passed ? 'passed' : 'failed' }, g.n);
    },
  });

  new Counter({
    name: 'orch_escalations_total',
    help: 'Tasks escalated to a human, by terminal reason.',
    labelNames: ['reason'] as const,
    registers,
    async collect() {
      const { escalations } = await snapshot();
      this.reset();
      for (const p of escalations) this.inc({ reason: str(p.reason, 'unknown') });
    },
  });

  new Counter({
    name: 'orch_budget_stops_total',
    help: `Build loops stopped by a budget, by reason (${BUDGET_REASONS.join(', ')}).`,
    labelNames: ['reason'] as const,
    registers,
    async collect() {
      const { escalations } = await snapshot();
      this.reset();
      for (const p of escalations) {
        const reason = str(p.reason, '');
        if ((BUDGET_REASONS as readonly string[]).includes(reason)) this.inc({ reason });
      }
    },
  });

  new Gauge({
    name: 'orch_tasks',
    help: 'Tasks by stage and status.',
    labelNames: ['stage', 'status'] as const,
    registers,
    async collect() {
      const { tasks } = await snapshot();
      this.reset();
      for (const t of tasks) this.set({ stage: t.stage, status: t.status }, t.n);
    },
  });

  // Outcome analytics (docs/analytics.md) by setup: role, model, effort and A/B variant.
  const setupCounter = <L extends string>(
    name: string,
    help: string,
    extra: readonly L[],
    fill: (o: Outcomes, inc: (key: GroupKey, more: Record<L, string>, v: number) => void) => void,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [...OUTCOME_LABELS, ...extra],
      registers,
      async collect() {
        const { outcomes } = await snapshot();
        this.reset();
        fill(outcomes, (key, more, v) => {
          if (v) this.inc({ ...setupLabels(key), ...more }, v);
        });
      },
    });
  setupCounter(
    'orch_outcome_runs_total',
    'Finished agent runs by setup (role, model, effort, variant) and outcome.',
    ['outcome'],
    (o, inc) => {
      for (const r of o.runs) if (r.outcome !== 'running') inc(r.key, { outcome: r.outcome }, r.runs);
    },
  );
  setupCounter('orch_outcome_tasks_done_total', 'Done tasks with a run of the setup.', [], (o, inc) => {
    for (const r of o.tasks) if (r.status === 'done') inc(r.key, {}, r.tasks);
  });
  setupCounter(
    'orch_outcome_done_attempts_total',
    'Build-loop attempts of the done tasks with a run of the setup (÷ tasks done: mean attempts to done).',
    [],
    (o, inc) => {
      for (const r of o.tasks) if (r.status === 'done') inc(r.key, {}, r.attempts);
    },
  );
  setupCounter(
    'orch_outcome_done_cost_usd_total',
    "USD of the setup's runs on done tasks (÷ tasks done: cost per done task).",
    [],
    (o, inc) => {
      for (const r of o.doneCosts) inc(r.key, {}, r.cost_usd);
    },
  );
  setupCounter(
    'orch_outcome_done_tokens_total',
    "Input and output tokens of the setup's runs on done tasks (÷ tasks done: tokens per done task).",
    [],
    (o, inc) => {
      for (const r of o.doneCosts) inc(r.key, {}, r.tokens);
    },
  );
  setupCounter(
    'orch_outcome_first_pass_total',
    'First attempts whose development or judging run is of the setup, by verdict (approved, rejected).',
    ['verdict'],
    (o, inc) => {
      for (const r of o.firstPass) {
        inc(r.key, { verdict: 'approved' }, r.approved);
        inc(r.key, { verdict: 'rejected' }, r.reviewed - r.approved);
      }
    },
  );
  setupCounter(
    'orch_outcome_interventions_total',
    'Human interventions on tasks with a run of the setup, by kind (approvals, retries, messages).',
    ['kind'],
    (o, inc) => {
      for (const r of o.interventions) {
        const kind = INTERVENTION_KINDS[r.kind as keyof typeof INTERVENTION_KINDS];
        if (kind) inc(r.key, { kind }, r.events);
      }
    },
  );
  new Gauge({
    name: 'orch_outcome_tasks_escalated',
    help: 'Tasks escalated now with a run of the setup, by terminal reason (a retried task leaves it).',
    labelNames: [...OUTCOME_LABELS, 'reason'],
    registers,
    async collect() {
      const { outcomes } = await snapshot();
      this.reset();
      for (const r of outcomes.tasks)
        if (r.status === 'escalated')
          this.inc({ ...setupLabels(r.key), reason: r.terminal_reason ?? 'unknown' }, r.tasks);
    },
  });
  new StoredHistogram(
    {
      name: 'orch_outcome_run_duration_seconds',
      help: 'Wall time of finished agent runs by setup (role, model, effort, variant).',
      labelNames: OUTCOME_LABELS,
      buckets: RUN_DURATION_BUCKETS_S,
      registers,
    },
    async () => (await snapshot()).outcomes.durations,
  );

  new Gauge({
    name: 'orch_event_loop_delay_seconds',
    help: "Delay of this process's event loop since the previous scrape, by stat (p50, p99, max); absent while no watchdog runs.",
    labelNames: ['stat'] as const,
    registers,
    collect() {
      const d = loopDelay();
      this.reset();
      if (!d) return;
      this.set({ stat: 'p50' }, d.p50S);
      this.set({ stat: 'p99' }, d.p99S);
      this.set({ stat: 'max' }, d.maxS);
    },
  });

  new Counter({
    name: 'orch_event_loop_stalls_total',
    help: "Times this process's event loop was blocked for a second or more since it started (each is also a warning in the log).",
    registers,
    collect() {
      const d = loopDelay();
      this.reset();
      if (d) this.inc(d.stalls);
    },
  });

  new Gauge({
    name: 'orch_event_loop_longest_stall_seconds',
    help: "The longest time this process's event loop was blocked since it started (0 without a stall).",
    registers,
    collect() {
      this.set(loopDelay()?.longestStallS ?? 0);
    },
  });

  const httpRequests = new Counter({
    name: 'orch_http_requests_total',
    help: 'HTTP requests served by this process, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });

  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return { registry, scrape, httpRequests };
}
