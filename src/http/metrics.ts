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
import { eventPayloads, gateCounts, runFigures, taskCounts, type RunFigures } from './queries.ts';
import { loopDelaySnapshot, type LoopDelaySnapshot } from '../runtime/loop-watchdog.ts';

/** Terminal reasons that mean a budget stopped the build loop. */
export const BUDGET_REASONS = ['budget_exhausted', 'max_attempts'] as const;

export const RUN_DURATION_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 5400];

interface Snapshot {
  runs: RunFigures[];
  gates: Awaited<ReturnType<typeof gateCounts>>;
  escalations: Record<string, unknown>[];
  reaped: Record<string, unknown>[];
  tasks: Awaited<ReturnType<typeof taskCounts>>;
  queued: number;
  runningAgents: number;
}

async function loadSnapshot(ctx: OrchContext): Promise<Snapshot> {
  const [runs, gates, escalations, reaped, tasks, queued, running] = await Promise.all([
    runFigures(ctx.store),
    gateCounts(ctx.store),
    eventPayloads(ctx.store, 'escalated'),
    eventPayloads(ctx.store, 'run_reaped'),
    taskCounts(ctx.store),
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
