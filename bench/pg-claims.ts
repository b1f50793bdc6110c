/**
 * Claims on PostgreSQL: orch's scheduler side by side with graphile-worker,
 * on the same server, with the same no-op work and the same concurrency.
 *
 * - Claim latency: a job is enqueued while the workers are idle; the time
 *   from the start of the enqueue to the moment the job's handler runs (for
 *   orch, where the agent would be spawned). Measured one job at a time.
 * - Throughput: N no-op jobs inserted by one statement; the time until the
 *   database records the last one complete.
 *
 * Each side gets a fresh database on the server, dropped at the end.
 *
 *   npm run bench:pg -- [--concurrency 4] [--jobs 5000] [--samples 200] [--gap-ms 20] [--rounds 2]
 *   ORCH_BENCH_PG_URL=postgres://user@host:5432/postgres (default: the local server, trust auth)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { Logger, run as runGraphile, type Runner } from 'graphile-worker';
import { openContext, type OrchContext } from '../src/runtime/context.ts';
import { Orchestrator } from '../src/orchestrator.ts';
import type { Stage } from '../src/core/stages.ts';
import { createLogger } from '../src/runtime/logger.ts';
import type { Job } from '../src/store/schema.ts';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '4' },
    jobs: { type: 'string', default: '5000' },
    samples: { type: 'string', default: '200' },
    'gap-ms': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
  },
});
const CONCURRENCY = Number(args.concurrency);
const JOBS = Number(args.jobs);
const SAMPLES = Number(args.samples);
const GAP_MS = Number(args['gap-ms']);
const ROUNDS = Number(args.rounds);
const ADMIN_URL = process.env.ORCH_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** One queue under test: how to start it, enqueue into it, and see it drained. */
interface Contender {
  name: string;
  /** Starts workers; `onRun(tag)` must be called by the no-op handler. */
  start(onRun: (tag: string) => void): Promise<void>;
  /** Enqueues one job carrying `tag`. */
  enqueue(tag: string): Promise<void>;
  /** Enqueues `n` jobs in one statement. */
  enqueueMany(n: number): Promise<void>;
  /** Jobs not yet complete. */
  pending(): Promise<number>;
  stop(): Promise<void>;
}

async function admin(query: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(query);
  } finally {
    await client.end();
  }
}

async function freshDatabase(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

function orchContender(url: string): Contender {
  const home = mkdtempSync(join(tmpdir(), 'orch-bench-'));
  let ctx: OrchContext;
  let scheduler: Orchestrator;
  // A task has one live job: every benchmark job stands for a task of its own.
  let nextTask = 1_000_000;
  let running: Promise<void>;
  return {
    name: 'orch',
    async start(onRun) {
      ctx = await openContext(home, { ORCH_DATABASE_URL: url, ORCH_HOME: home });
      const store = ctx.store;
      scheduler = new Orchestrator({
        ctx,
        log: createLogger({ level: 'warn' }),
        concurrency: CONCURRENCY,
        untilIdle: false,
        // Claims only: no notification outbox polling the database beside them (and none left
        // querying a database this benchmark drops at the end of a round), no tracker poller.
        outbox: false,
        trackers: false,
        // The no-op job: its handler runs where the agent would be spawned, then completes it.
        processJob: async (job: Job) => {
          onRun(job.stage);
          await store.finishJob(store.db, job.id, 'done');
        },
      });
      running = scheduler.run();
      // Let the scheduler start listening before anything is measured.
      await new Promise((r) => setTimeout(r, 500));
    },
    async enqueue(tag) {
      await ctx.store.enqueueJob(ctx.store.db, {
        task: { id: (nextTask += 1), project_id: 0 },
        spec: { stage: tag as Stage, step: 'work', agent: 'orch', adapter: null },
        repo: 'bench',
      });
    },
    async enqueueMany(n) {
      const now = new Date().toISOString();
      await sql`
        INSERT INTO jobs (task_id, project_id, agent, repo, stage, status, attempts, run_after, created_at)
        SELECT g, 0, 'orch', 'bench', 'bulk-' || g, 'queued', 0, ${now}, ${now}
        FROM generate_series(1, ${n}) g`.execute(ctx.store.db);
    },
    async pending() {
      const r = await sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM jobs WHERE status IN ('queued', 'running')`.execute(ctx.store.db);
      return r.rows[0]!.n;
    },
    async stop() {
      scheduler.stop();
      await running;
      await ctx.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function graphileContender(url: string): Contender {
  let runner: Runner;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // graphile-worker's own connections, in a pool of ours: an idle connection the server ends (the
  // database dropped WITH (FORCE) at the end of the round, another session's
  // pg_terminate_backend) is dropped from a pool that listens; unheard, its error ends the process.
  const workerPool = new pg.Pool({ connectionString: url, max: 10 });
  for (const p of [pool, workerPool]) {
    p.on('error', () => {});
    p.on('connect', (client) => client.on('error', () => {}));
  }
  return {
    name: 'graphile-worker',
    async start(onRun) {
      runner = await runGraphile({
        pgPool: workerPool,
        concurrency: CONCURRENCY,
        noHandleSignals: true,
        pollInterval: 1_000,
        logger: new Logger(() => () => {}),
        taskList: {
          noop: async (payload) => {
            onRun((payload as { tag: string }).tag);
          },
        },
      });
      await new Promise((r) => setTimeout(r, 500));
    },
    async enqueue(tag) {
      await pool.query(`SELECT graphile_worker.add_job('noop', json_build_object('tag', $1::text))`, [tag]);
    },
    async enqueueMany(n) {
      await pool.query(
        `SELECT graphile_worker.add_job('noop', json_build_object('tag', 'bulk-' || g)) FROM generate_series(1, $1::int) g`,
        [n],
      );
    },
    async pending() {
      const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM graphile_worker.jobs`);
      return r.rows[0]!.n;
    },
    async stop() {
      await runner.stop();
      await Promise.all([pool.end(), workerPool.end()]);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

interface Figures {
  latency: { p50: number; p90: number; p99: number; max: number };
  throughput: number;
  /** CPU of this (worker) process per job during the throughput run, in µs. */
  cpuUsPerJob: number;
}

async function measure(make: (url: string) => Contender, prefix: string): Promise<Figures> {
  const database = await freshDatabase(prefix);
  const contender = make(database.url);
  const started = new Map<string, number>();
  const latencies: number[] = [];
  let ran = 0;
  let onSample: (() => void) | null = null;
  try {
    await contender.start((tag) => {
      ran += 1;
      const t0 = started.get(tag);
      if (t0 !== undefined) {
        latencies.push(performance.now() - t0);
        onSample?.();
      }
    });
    // Warm up connections and plans.
    for (let i = 0; i < 20; i += 1) {
      const done = new Promise<void>((r) => (onSample = r));
      started.set(`warm-${i}`, performance.now());
      await contender.enqueue(`warm-${i}`);
      await done;
    }
    latencies.length = 0;
    for (let i = 0; i < SAMPLES; i += 1) {
      await sleep(GAP_MS);
      const done = new Promise<void>((r) => (onSample = r));
      started.set(`s-${i}`, performance.now());
      await contender.enqueue(`s-${i}`);
      await done;
    }
    while ((await contender.pending()) > 0) await sleep(10);

    ran = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await contender.enqueueMany(JOBS);
    while ((await contender.pending()) > 0) await sleep(10);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (ran !== JOBS) throw new Error(`${contender.name}: ran ${ran} of ${JOBS} jobs`);
    latencies.sort((a, b) => a - b);
    return {
      latency: {
        p50: quantile(latencies, 0.5),
        p90: quantile(latencies, 0.9),
        p99: quantile(latencies, 0.99),
        max: latencies.at(-1)!,
      },
      throughput: JOBS / seconds,
      cpuUsPerJob: (cpu.user + cpu.system) / JOBS,
    };
  } finally {
    await contender.stop().catch(() => {});
    await database.drop();
  }
}

const ms = (v: number) => `${v.toFixed(2)} ms`;

async function main(): Promise<void> {
  const server = await (async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
    const v = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    await client.end();
    return v;
  })();
  console.log(
    `PostgreSQL ${server}; concurrency ${CONCURRENCY}; latency: ${SAMPLES} jobs one at a time, ${GAP_MS} ms apart; throughput: ${JOBS} no-op jobs; best of ${ROUNDS} rounds each, alternating`,
  );
  const results: Record<string, Figures[]> = { orch: [], 'graphile-worker': [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    results.orch!.push(await measure(orchContender, 'orch_bench'));
    if (process.env.ORCH_BENCH_ONLY === 'orch') continue;
    results['graphile-worker']!.push(await measure(graphileContender, 'orch_bench_gw'));
  }
  if (process.env.ORCH_BENCH_ONLY === 'orch') results['graphile-worker'] = results.orch!;
  const best = (fs: Figures[]): Figures => ({
    latency: fs.reduce((a, b) => (b.latency.p50 < a.latency.p50 ? b : a)).latency,
    throughput: Math.max(...fs.map((f) => f.throughput)),
    cpuUsPerJob: Math.min(...fs.map((f) => f.cpuUsPerJob)),
  });
  const o = best(results.orch!);
  const g = best(results['graphile-worker']!);
  const rows = [
    ['', 'orch', 'graphile-worker', 'orch / graphile'],
    ['claim latency p50', ms(o.latency.p50), ms(g.latency.p50), (o.latency.p50 / g.latency.p50).toFixed(2)],
    ['claim latency p90', ms(o.latency.p90), ms(g.latency.p90), (o.latency.p90 / g.latency.p90).toFixed(2)],
    ['claim latency p99', ms(o.latency.p99), ms(g.latency.p99), (o.latency.p99 / g.latency.p99).toFixed(2)],
    [
      'throughput',
      `${o.throughput.toFixed(0)} jobs/s`,
      `${g.throughput.toFixed(0)} jobs/s`,
      (o.throughput / g.throughput).toFixed(2),
    ],
    [
      'worker CPU per job',
      `${o.cpuUsPerJob.toFixed(0)} µs`,
      `${g.cpuUsPerJob.toFixed(0)} µs`,
      (o.cpuUsPerJob / g.cpuUsPerJob).toFixed(2),
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(
    `latency: lower is better (ratio < 1 means orch is faster); throughput: higher is better (ratio > 1 means orch is faster)`,
  );
}

await main();
