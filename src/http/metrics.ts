/**
 * `/metrics` for Prometheus. The domain figures are derived from the store at
 * scrape time (one snapshot per scrape), not counted in this process: runs,
 * tokens and cost are written by whichever process ran the agent, survive
 * restarts, and so stay right with several `orch worker`s or an `orch run`
 * beside `orch serve`. Only the HTTP request counter and the optional
 * process metrics are in-process. The names are listed in docs/api.md.
 */
import { elapsedMs } from '../core/stages.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OrchContext } from '../runtime/context.ts';
import type { ReportStore, RunFigures } from '../store/report-store.ts';

/** Terminal reasons that mean a budget stopped the build loop. */
export const BUDGET_REASONS = ['budget_exhausted', 'max_attempts'] as const;

export const RUN_DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 5400];

interface Snapshot {
  runs: RunFigures[];
  gates: Awaited<ReturnType<ReportStore['gateCounts']>>;
  escalations: Record<string, unknown>[];
  reaped: Record<string, unknown>[];
  tasks: Awaited<ReturnType<ReportStore['taskCounts']>>;
  queued: number;
  runningAgents: number;
}

async function loadSnapshot(ctx: OrchContext): Promise<Snapshot> {
  const [runs, gates, escalations, reaped, tasks, queued, running] = await Promise.all([
    ctx.store.reports.runFigures(),
    ctx.store.reports.gateCounts(),
    ctx.store.reports.eventPayloads('escalated'),
    ctx.store.reports.eventPayloads('run_reaped'),
    ctx.store.reports.taskCounts(),
    ctx.store.countJobs('queued'),
    ctx.store.getRunningAgents(),
  ]);
  return { runs, gates, escalations, reaped, tasks, queued, runningAgents: running.length };
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
  let queue: Promise<unknown> = Promise.resolve();
  const scrape = (): Promise<string> => {
    const next = queue.then(async () => {
      current = null;
      try {
        return await registry.metrics();
      } finally {
        current = null;
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

  const httpRequests = new Counter({
    name: 'orch_http_requests_total',
    help: 'HTTP requests served by this process, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });

  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return { registry, scrape, httpRequests };
}
