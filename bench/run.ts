/**
 * `npm run bench`: every figure of issue 12, each next to a reference measured
 * in the same run on the same machine. Prints one table, writes
 * `bench/results/latest.json` and draws `bench/results/latest.svg`.
 *
 * Sizes (environment; the defaults are the issues' sizes, about 10 minutes on 2 cores;
 * `ORCH_BENCH_QUICK=1` makes every one small):
 *   ORCH_BENCH_DISPATCH_SAMPLES (40)  ORCH_BENCH_TASKS (500)  ORCH_BENCH_CONCURRENCY (4)
 *   ORCH_BENCH_ROUNDS (5: throughput's interleaved rounds)  ORCH_BENCH_INGEST_MB (200)
 *   ORCH_BENCH_IDLE_AGENTS (200)  ORCH_BENCH_API_TASKS (10000)  ORCH_BENCH_API_RUNS (100000)
 *   ORCH_BENCH_API_REQUESTS (200)  ORCH_BENCH_STATS_TASKS (10000)  ORCH_BENCH_STATS_RUNS (100000)
 *   ORCH_BENCH_STATS_SAMPLES (10)  ORCH_BENCH_HISTORY (1000,10000,100000)  ORCH_BENCH_HISTORY_RUNS (10)
 *   ORCH_BENCH_TRACKER_ISSUES (50)  ORCH_BENCH_TRACKER_POLL (1; 0 skips the 60 s polling side)
 *   ORCH_BENCH_ONLY (comma list of figures)
 *   ORCH_BENCH_SCALE_TASKS (200)  ORCH_BENCH_SCALE_WORKERS (1,2,4)  ORCH_BENCH_SCALE_CONCURRENCY (2): scale-out.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { makeProject, processesIn, type TempProject } from '../test/helpers/kit.ts';
import { Orchestrator } from '../src/orchestrator.ts';
import { createLogger } from '../src/runtime/logger.ts';
import { addTask } from '../src/runtime/tasks.ts';
import { createStreamJsonParser } from '../src/agents/stream-json.ts';
import { createApp } from '../src/http/app.ts';
import { openContext, type OrchContext } from '../src/runtime/context.ts';
import type { Usage } from '../src/agents/events.ts';
import { openDatabase } from '../src/store/db.ts';
import { Store } from '../src/store/store.ts';
import { statsReport } from '../src/runtime/stats.ts';
import { createTestDatabase } from '../test/helpers/pg.ts';
import { startGitHubFake } from '../test/fakes/trackers/github-server.ts';
import { sendWebhook } from '../test/fakes/trackers/webhook-sender.ts';
import { sql } from 'kysely';
import { DatabaseSync } from 'node:sqlite';
import { BOARD_FINISHED_TASKS, BOARD_OPEN_TASKS } from '../src/http/board-lists.ts';
import { renderSvg, type Figure } from './chart.ts';
import { scaleOut } from './scale-out.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const NOOP = join(HERE, 'fixtures', 'noop-agent.sh');
const IDLE = join(HERE, 'fixtures', 'idle-agent.sh');
const FLOOR = join(HERE, 'fixtures', 'floor.sh');
/** `ORCH_BENCH_QUICK=1`: every size small (a minute or two in all), for trying the benchmark out. */
const QUICK = process.env.ORCH_BENCH_QUICK === '1';
const int = (name: string, fallback: number, quick = fallback) =>
  Number(process.env[name] ?? (QUICK ? quick : fallback));
const ONLY = process.env.ORCH_BENCH_ONLY?.split(',');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (v: number, digits = 2) => Number(v.toFixed(digits));

/** A pipeline with only the given agent stages, no gates. */
function pipelineConfig(stages: string[], command: string): Record<string, unknown> {
  const all = ['analysis', 'architecture', 'development', 'review', 'testing', 'deploy-staging', 'deploy'];
  const pipeline: Record<string, unknown> = {};
  for (const s of all)
    pipeline[s] = stages.includes(s) || s === 'development' ? { gates: [] } : { enabled: false };
  return {
    agents: { default: { adapter: 'command', command: [command] } },
    pipeline,
  };
}

/** Spawns `argv` and resolves when it exits; `onSpawn` gets the time from the call to the 'spawn' event. */
function spawnAndWait(argv: string[], onSpawn?: (ms: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.once('spawn', () => onSpawn?.(performance.now() - t0));
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', () => resolve());
  });
}

/** Runs a scheduler on the project until `until` resolves. */
async function withScheduler<T>(
  ctx: OrchContext,
  concurrency: number,
  body: (scheduler: Orchestrator) => Promise<T>,
): Promise<T> {
  const scheduler = new Orchestrator({
    ctx,
    log: createLogger({ level: 'warn' }),
    concurrency,
    untilIdle: false,
  });
  const running = scheduler.run();
  try {
    return await body(scheduler);
  } finally {
    scheduler.stop();
    await running;
  }
}

async function waitDone(ctx: OrchContext, n: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await ctx.store.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', 'in', ['done', 'escalated', 'cancelled'])
      .executeTakeFirstOrThrow();
    if (Number(r.n) >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${r.n} of ${n} tasks finished in ${timeoutMs} ms`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------- dispatch latency

/** Resolves when the task is finished (done, escalated or cancelled): one row read by id, no count. */
async function waitTaskDone(ctx: OrchContext, id: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await ctx.store.getTask(id);
    if (['done', 'escalated', 'cancelled'].includes(t.status)) return;
    if (Date.now() > deadline) throw new Error(`task ${t.key} not finished in ${timeoutMs} ms (${t.status})`);
    await sleep(20);
  }
}

/**
 * Dispatch latency, `samples` tasks one at a time after `warmup` more: from the moment the
 * development job is enqueued (SQLite commits before the scheduler can see it) to the
 * launcher's onSpawn recording the agent's pid, timed by wrapping the store's methods in this
 * process only. The reference, a bare spawn of the same agent, is taken before each sample, so
 * both see the machine as loaded as it is.
 */
async function dispatchSamples(
  ctx: OrchContext,
  samples: number,
  warmup: number,
): Promise<{ orch: number[]; reference: number[] }> {
  const store = ctx.store;
  const enqueuedAt = new Map<number, number>();
  const runTask = new Map<number, number>();
  const latencies: number[] = [];
  const enqueue = store.enqueueJob.bind(store);
  store.enqueueJob = async (ex, job) => {
    const r = await enqueue(ex, job);
    if (job.spec.stage === 'development') enqueuedAt.set(job.task.id, performance.now());
    return r;
  };
  const createRun = store.createRun.bind(store);
  store.createRun = async (r) => {
    const id = await createRun(r);
    runTask.set(id, r.taskId);
    return id;
  };
  const setRunProcess = store.setRunProcess.bind(store);
  store.setRunProcess = (runId, pid, pgid) => {
    const t = enqueuedAt.get(runTask.get(runId)!);
    if (t !== undefined) latencies.push(performance.now() - t);
    return setRunProcess(runId, pid, pgid);
  };
  const ref: number[] = [];
  await withScheduler(ctx, 1, async () => {
    await sleep(300);
    for (let i = 0; i < samples + warmup; i += 1) {
      await spawnAndWait([NOOP], (ms) => ref.push(ms));
      const task = await addTask(ctx, `dispatch ${i}`, {});
      await waitTaskDone(ctx, task.id, 30_000);
    }
  });
  store.enqueueJob = enqueue;
  store.createRun = createRun;
  store.setRunProcess = setRunProcess;
  return { orch: latencies.slice(warmup), reference: ref.slice(warmup) };
}

/** The p50 and p99 figures of one store's dispatch samples. */
function dispatchFigures(store: string, orch: number[], reference: number[]): Figure[] {
  const p50 = quantile(orch, 0.5);
  const r50 = quantile(reference, 0.5);
  return [
    {
      name: `dispatch latency p50 (${store})`,
      value: round(p50),
      unit: 'ms',
      reference: round(r50),
      ratio: round(p50 / r50),
      target: 'p50 ≤ reference + 3 ms',
      met: p50 <= r50 + 3,
    },
    {
      name: `dispatch latency p99 (${store})`,
      value: round(quantile(orch, 0.99)),
      unit: 'ms',
      reference: round(quantile(reference, 0.99)),
      ratio: round(quantile(orch, 0.99) / quantile(reference, 0.99)),
      target: 'none (reported)',
      met: null,
    },
  ];
}

async function dispatch(): Promise<Figure[]> {
  const samples = int('ORCH_BENCH_DISPATCH_SAMPLES', 40, 10);
  const figures: Figure[] = [];
  const project = makeProject({ config: pipelineConfig(['development'], NOOP) });
  try {
    const ctx = await project.context();
    const { orch, reference } = await dispatchSamples(ctx, samples, 5);
    await ctx.close();
    figures.push(...dispatchFigures('SQLite', orch, reference));
  } finally {
    project.cleanup();
  }
  // The same on PostgreSQL: the scheduler wakes on LISTEN/NOTIFY, the claim is a round trip.
  if (!(await pgUp())) return figures;
  const pg = makeProject({ config: pipelineConfig(['development'], NOOP) });
  const db = await createTestDatabase('orch_bench');
  try {
    const init = pg.orch(['init'], { env: { ORCH_DATABASE_URL: db.url } });
    if (init.code !== 0) throw new Error(`dispatch on PostgreSQL: orch init: ${init.stderr}`);
    const ctx = await openContext(pg.dir, { ...pg.env, ORCH_DATABASE_URL: db.url });
    try {
      const { orch, reference } = await dispatchSamples(ctx, samples, 5);
      figures.push(...dispatchFigures('PostgreSQL', orch, reference));
    } finally {
      await ctx.close();
    }
  } finally {
    pg.cleanup();
    await db.drop();
  }
  return figures;
}

// ---------------------------------------------------------------- pipeline throughput

/** Runs `argv` to its end; rejects when it exits other than 0 (with what it printed on stderr). */
function runChecked(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { ...opts, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code}: ${err.trim()}`)),
    );
  });
}

/** A fresh repository on `main` with one commit, for the floor's worktrees. */
function floorRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orch-bench-floor-'));
  const git = (args: string[]) => spawnSync('git', args, { cwd: dir, stdio: 'ignore' });
  git(['init', '-q', '-b', 'main']);
  writeFileSync(join(dir, 'README.md'), '# floor\n');
  git(['add', '-A']);
  git(['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'initial']);
  writeFileSync(join(dir, '.git', 'info', 'exclude'), '/.floor/\n');
  return dir;
}

async function throughput(): Promise<Figure[]> {
  const n = int('ORCH_BENCH_TASKS', 500, 100);
  const concurrency = int('ORCH_BENCH_CONCURRENCY', 4);
  const rounds = Math.max(1, Math.min(n, int('ORCH_BENCH_ROUNDS', 5, 2)));
  const STAGES = 3;
  // The floor: the same agent and the same git steps per task, by the shortest program there is.
  const floor = (first: number, count: number) =>
    runChecked([
      '/bin/sh',
      FLOOR,
      repo,
      NOOP,
      String(first),
      String(count),
      String(concurrency),
      String(STAGES),
    ]);
  // The physical limit: the agent alone, spawn-and-wait, N×3 runs at the same concurrency.
  const bare = async (count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count * STAGES) {
          next += 1;
          await spawnAndWait([NOOP]);
        }
      }),
    );
  };
  const repo = floorRepo();
  const project = makeProject({ config: pipelineConfig(['development', 'review', 'testing'], NOOP) });
  const ms = { orch: 0, floor: 0, bare: 0 };
  let orchCpuMs = 0;
  const timed = async (side: keyof typeof ms, body: () => Promise<void>) => {
    const t0 = performance.now();
    await body();
    ms[side] += performance.now() - t0;
  };
  try {
    const ctx = await project.context();
    // Interleaved in rounds (floor, orch, bare spawns; n/rounds tasks each), so a drift in the
    // shared machine's load reaches all three alike.
    await withScheduler(ctx, concurrency, async () => {
      await sleep(300);
      let added = 0;
      for (let r = 0; r < rounds; r += 1) {
        const count = Math.floor((n * (r + 1)) / rounds) - added;
        await timed('floor', () => floor(added, count));
        const cpu = process.cpuUsage();
        await timed('orch', async () => {
          for (let i = 0; i < count; i += 1) await addTask(ctx, `throughput ${added + i}`, {});
          await waitDone(ctx, added + count, Math.max(240_000, count * 1000));
        });
        const used = process.cpuUsage(cpu);
        orchCpuMs += (used.user + used.system) / 1000;
        await timed('bare', () => bare(count));
        added += count;
      }
    });
    const done = await ctx.store.db
      .selectFrom('tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'done')
      .executeTakeFirstOrThrow();
    if (Number(done.n) !== n) throw new Error(`throughput: ${done.n} of ${n} tasks done`);
    await ctx.close();
    const perS = (t: number) => n / (t / 1000);
    const [tps, floorTps, bareTps] = [perS(ms.orch), perS(ms.floor), perS(ms.bare)];
    const label = `${n} tasks × ${STAGES} stages, c=${concurrency}`;
    // Where a miss comes from: orch's one thread busy per task (its children's CPU not counted).
    console.error(
      `throughput: orch ${(ms.orch / n).toFixed(1)} ms/task of wall, its process ${(orchCpuMs / n).toFixed(1)} ms/task of CPU; floor ${(ms.floor / n).toFixed(1)} ms/task of wall`,
    );
    return [
      {
        name: `pipeline throughput against its floor (${label})`,
        value: round(tps),
        unit: 'tasks/s',
        reference: round(floorTps),
        ratio: round(tps / floorTps, 3),
        target: 'ratio ≥ 0.8',
        met: tps / floorTps >= 0.8,
      },
      {
        name: `pipeline throughput against bare spawns (${label})`,
        value: round(tps),
        unit: 'tasks/s',
        reference: round(bareTps),
        ratio: round(tps / bareTps, 3),
        target: 'none (the physical limit)',
        met: null,
      },
    ];
  } finally {
    project.cleanup();
    rmSync(repo, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- event ingest

/** One generated Claude Code run as stream-json lines: init, turns of assistant/tool lines, result. */
function generatedRun(turns: number): string[] {
  const session = 'bench-session';
  const lines = [
    JSON.stringify({
      type: 'system',
      subtype: 'init',
      session_id: session,
      model: 'claude-sonnet-4-5',
      cwd: '/w',
    }),
  ];
  const filler = 'lorem ipsum dolor sit amet '.repeat(20);
  for (let t = 0; t < turns; t += 1) {
    const usage = {
      input_tokens: 100 + t,
      output_tokens: 50,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 10,
    };
    const message = (content: unknown[]) => ({
      type: 'assistant',
      session_id: session,
      message: { id: `msg_${t}`, model: 'claude-sonnet-4-5', role: 'assistant', content, usage },
    });
    lines.push(JSON.stringify(message([{ type: 'text', text: `${filler} turn ${t}` }])));
    lines.push(
      JSON.stringify(
        message([{ type: 'tool_use', id: `tool_${t}`, name: 'Bash', input: { command: `echo ${t}` } }]),
      ),
    );
    lines.push(
      JSON.stringify({
        type: 'user',
        session_id: session,
        message: {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: `tool_${t}`, content: filler }],
        },
      }),
    );
  }
  lines.push(
    JSON.stringify({
      type: 'result',
      subtype: 'success',
      is_error: false,
      result: 'done',
      session_id: session,
      num_turns: turns,
      total_cost_usd: 0.1,
      usage: { input_tokens: 1000, output_tokens: 500 },
    }),
  );
  return lines;
}

async function ingest(): Promise<Figure[]> {
  const targetMb = int('ORCH_BENCH_INGEST_MB', 200, 20);
  const runText = generatedRun(50).join('\n') + '\n';
  const runBytes = Buffer.byteLength(runText);
  const runs = Math.ceil((targetMb * 1024 * 1024) / runBytes / 16) * 16;
  const mb = (runs * runBytes) / 1024 / 1024;
  // The stream as it comes off a pipe: 64 KiB chunks.
  const chunks: Buffer[] = [];
  const whole = Buffer.from(runText.repeat(16));
  for (let i = 0; i < whole.length; i += 65536) chunks.push(whole.subarray(i, i + 65536));
  const passes = runs / 16;
  /** Splits the stream into lines, chunk by chunk; `afterChunk` runs between chunks (where a pipe would yield). */
  const splitLines = async (onLine: (line: string) => void, afterChunk?: () => Promise<void>) => {
    for (let p = 0; p < passes; p += 1) {
      let rest = '';
      for (const c of chunks) {
        const text = rest + c.toString('utf8');
        let start = 0;
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
          onLine(text.slice(start, nl));
          start = nl + 1;
        }
        rest = text.slice(start);
        if (afterChunk) await afterChunk();
      }
    }
  };
  /**
   * Each side's best of three timed passes, in MB/s. The passes alternate (reference, orch,
   * reference, …), so a burst of load on the shared machine hits both sides alike.
   */
  const bestOfAlternating = async (ref: () => Promise<void>, orch: () => Promise<void>) => {
    const fastest = [Infinity, Infinity];
    for (let i = 0; i < 3; i += 1) {
      for (const [side, pass] of [ref, orch].entries()) {
        const t0 = performance.now();
        await pass();
        fastest[side] = Math.min(fastest[side]!, performance.now() - t0);
      }
    }
    return fastest.map((ms) => mb / (ms / 1000)) as [number, number];
  };

  // Reference: bare line splitting and JSON.parse.
  let parsed = 0;
  const refPass = () =>
    splitLines((line) => {
      if (JSON.parse(line)) parsed += 1;
    });

  const project = makeProject({ config: pipelineConfig(['development'], NOOP) });
  try {
    const ctx = await project.context();
    const task = await addTask(ctx, 'ingest', {});
    const store = ctx.store;
    const newRun = () =>
      store.createRun({
        taskId: task.id,
        jobId: null,
        agent: 'developer',
        stage: 'development',
        attempt: 1,
        adapter: 'claude-code',
        timeoutS: 60,
        logPath: '',
        workerId: 'bench',
      });
    let events = 0;
    // As the launcher does: a run row before the run, one parser per run, its usage recorded at its end.
    const [refMbs, mbs] = await bestOfAlternating(refPass, async () => {
      let parse = createStreamJsonParser();
      let runId = await newRun();
      const ended: (Usage | null)[] = [];
      await splitLines(
        (line) => {
          let result = false;
          let usage: Usage | null = null;
          for (const e of parse(line)) {
            events += 1;
            if (e.type === 'result') {
              result = true;
              usage = e.usage ?? null;
            }
          }
          if (result) {
            ended.push(usage);
            parse = createStreamJsonParser();
          }
        },
        async () => {
          for (const usage of ended.splice(0)) {
            await store.recordUsage(runId, usage);
            runId = await newRun();
          }
        },
      );
    });
    await ctx.close();
    if (events < parsed) throw new Error(`ingest: ${events} events from ${parsed} lines`);
    return [
      {
        name: `event ingest (${mb.toFixed(0)} MB stream-json → parser → store)`,
        value: round(mbs, 1),
        unit: 'MB/s',
        reference: round(refMbs, 1),
        ratio: round(mbs / refMbs),
        target: 'ratio ≥ 0.5 and ≥ 50 MB/s',
        met: mbs / refMbs >= 0.5 && mbs >= 50,
      },
    ];
  } finally {
    project.cleanup();
  }
}

// ---------------------------------------------------------------- memory

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** orch's executable, as users run it (`orch` on PATH is this file). */
const ORCH_BIN = join(HERE, '..', 'bin', 'orch.js');

async function memory(): Promise<Figure[]> {
  const agents = int('ORCH_BENCH_IDLE_AGENTS', 200, 50);
  const project: TempProject = makeProject({ config: pipelineConfig(['development'], IDLE) });
  const env = { ...project.env, ORCH_CONCURRENCY: String(agents), ORCH_LOG_LEVEL: 'warn' };
  // bin/orch.js enables Node's compile cache; one start fills it, as any earlier use of orch
  // would have: the figure is that of every start but the very first after an install or edit.
  spawnSync(process.execPath, [ORCH_BIN, 'run', '--until-idle'], { cwd: project.dir, env, stdio: 'ignore' });
  const orch = spawn(process.execPath, [ORCH_BIN, 'run'], {
    cwd: project.dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  orch.stdout?.resume();
  orch.stderr?.resume();
  const ctx = await project.context();
  try {
    await sleep(3000);
    const base = rssMb(orch.pid!);
    for (let i = 0; i < agents; i += 1) await addTask(ctx, `idle ${i}`, {});
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await ctx.store.db
        .selectFrom('agent_runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('pid', 'is not', null)
        .where('finished_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(r.n) >= agents) break;
      if (Date.now() > deadline) throw new Error(`memory: only ${r.n} of ${agents} agents started`);
      await sleep(200);
    }
    await sleep(3000);
    const full = rssMb(orch.pid!);
    const perRun = (full - base) / agents;
    return [
      {
        name: `orchestrator RSS, ${agents} idle agents`,
        value: round(full, 1),
        unit: 'MB',
        reference: round(base, 1),
        ratio: round(full / base),
        target: '≤ 150 MB',
        met: full <= 150,
      },
      {
        name: 'RSS per extra run',
        value: round(perRun, 3),
        unit: 'MB/run',
        reference: null,
        ratio: null,
        target: '≤ 0.3 MB/run',
        met: perRun <= 0.3,
      },
    ];
  } finally {
    await ctx.close();
    const exited = new Promise((r) => orch.once('exit', r));
    orch.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    if (orch.exitCode === null) orch.kill('SIGKILL');
    // Every agent must be gone: anything still alive in the project is killed by pid.
    for (const pid of processesIn(project.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    const left = processesIn(project.dir).length;
    project.cleanup();
    if (left) console.error(`memory: ${left} agent processes outlived the orchestrator (killed)`);
  }
}

// ---------------------------------------------------------------- API at scale

/** A task row for the large histories: `T-<j+1>`, at `status` (escalated ones with a reason). */
function generatedTask(projectId: number, j: number, now: string, status: 'done' | 'escalated' | 'running') {
  return {
    project_id: projectId,
    key: `T-${j + 1}`,
    title: `task ${j + 1}`,
    description: 'generated',
    priority: 0,
    labels: '[]',
    stage: status === 'done' ? ('done' as const) : ('development' as const),
    status,
    terminal_reason:
      status === 'escalated' ? (['max_attempts', 'budget_exhausted', 'agent_failure'] as const)[j % 3] : null,
    status_detail: null,
    version: 1,
    attempt: 1,
    feedback: null,
    budget_json: null,
    loop_run_id: null,
    created_at: now,
    updated_at: now,
    started_at: now,
    finished_at: now,
  };
}

async function api(): Promise<Figure[]> {
  const nTasks = int('ORCH_BENCH_API_TASKS', 10_000, 1000);
  const nRuns = int('ORCH_BENCH_API_RUNS', 100_000, 10_000);
  const requests = int('ORCH_BENCH_API_REQUESTS', 200, 50);
  const project = makeProject({ config: pipelineConfig(['development'], NOOP) });
  try {
    const ctx = await project.context();
    const store = ctx.store;
    const projectRow = (await store.listProjects())[0]!;
    const now = new Date().toISOString();
    await store.tx(async (tx) => {
      for (let i = 0; i < nTasks; i += 500) {
        const rows = [];
        for (let j = i; j < Math.min(nTasks, i + 500); j += 1)
          rows.push(generatedTask(projectRow.id, j, now, 'done'));
        await tx.insertInto('tasks').values(rows).execute();
      }
      const first = (await tx.selectFrom('tasks').select('id').orderBy('id').executeTakeFirstOrThrow()).id;
      for (let i = 0; i < nRuns; i += 500) {
        const rows = [];
        for (let j = i; j < Math.min(nRuns, i + 500); j += 1)
          rows.push({
            task_id: first + (j % nTasks),
            job_id: null,
            agent: 'developer',
            stage: 'development',
            attempt: 1,
            adapter: 'command',
            status: 'finished' as const,
            outcome: 'ok' as const,
            started_at: now,
            finished_at: now,
            exit_code: 0,
            input_tokens: 100,
            output_tokens: 50,
            cost_usd: 0.01,
          });
        await tx.insertInto('agent_runs').values(rows).execute();
      }
    });
    const { app } = createApp(ctx, { webDir: null });
    const time = async (fn: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let i = 0; i < 5; i += 1) await fn();
      for (let i = 0; i < requests; i += 1) {
        const t0 = performance.now();
        await fn();
        xs.push(performance.now() - t0);
      }
      return quantile(xs, 0.99);
    };
    const get = async (path: string) => {
      const res = await app.request(`http://127.0.0.1${path}`);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
      await res.arrayBuffer();
    };
    const key = (i: number) => `T-${1 + ((i * 7919) % nTasks)}`;
    let k = 0;
    // A page (the default 100) at a cursor spread over the table, as a client paging through it.
    const cursor = (i: number) => (i * 7919) % Math.max(1, nTasks - 100);
    let c = 0;
    const list = await time(() => get(`/api/tasks?after=${cursor((c += 1))}`));
    const listRef = await time(() => store.listTasks({ after: cursor((c += 1)), limit: 101 }));
    const page = await time(() => get(`/api/tasks/${key((k += 1))}`));
    const pageRef = await time(async () => {
      const t = await store.getTaskByKey(key((k += 1)));
      await Promise.all([store.runsOfTask(t.id), store.attemptsOfTask(t.id), store.gatesOfTask(t.id)]);
    });
    await ctx.close();
    const fig = (name: string, v: number, ref: number): Figure => ({
      name,
      value: round(v),
      unit: 'ms p99',
      reference: round(ref),
      ratio: round(v / ref),
      target: '≤ 25 ms',
      met: v <= 25,
    });
    return [
      fig(`API task list, a page of 100 (${nTasks} tasks, ${nRuns} runs)`, list, listRef),
      fig('API task page', page, pageRef),
    ];
  } finally {
    project.cleanup();
  }
}

// ---------------------------------------------------------------- cost as history grows

/**
 * Writes a history of `n` finished tasks into a project's store, straight through its schema
 * (one statement a table, in one transaction): nine in ten done, one in ten cancelled, each
 * with its three stages' jobs and runs and ten events; the project's task counter goes on
 * after them. Twenty more tasks are escalated and wait for a person, as a team's would.
 */
function seedHistory(dbPath: string, n: number): void {
  const db = new DatabaseSync(dbPath);
  const now = new Date().toISOString();
  const open = 20;
  try {
    db.exec('BEGIN');
    const projectId = (db.prepare('SELECT id FROM projects ORDER BY id LIMIT 1').get() as { id: number }).id;
    const seq = (count: number) =>
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count})`;
    db.prepare(
      `${seq(n + open)} INSERT INTO tasks (project_id, key, title, description, stage, status, terminal_reason,
         version, attempt, created_at, updated_at, started_at, finished_at)
       SELECT ?, 'T-' || i, 'history task ' || i, 'generated',
         CASE WHEN i > ${n} THEN 'development' WHEN i % 10 = 0 THEN 'cancelled' ELSE 'done' END,
         CASE WHEN i > ${n} THEN 'escalated' WHEN i % 10 = 0 THEN 'cancelled' ELSE 'done' END,
         CASE WHEN i > ${n} THEN 'max_attempts' END, 5, 1, ?, ?, ?, ? FROM n`,
    ).run(projectId, now, now, now, now);
    db.prepare('UPDATE projects SET next_task_number = ? WHERE id = ?').run(n + open + 1, projectId);
    const stages = `(SELECT 'development' AS stage, 'developer' AS agent UNION ALL
       SELECT 'review', 'reviewer' UNION ALL SELECT 'testing', 'tester')`;
    db.prepare(
      `INSERT INTO jobs (task_id, project_id, agent, repo, stage, status, attempts, run_after, started_at,
         finished_at, created_at, adapter)
       SELECT t.id, t.project_id, s.agent, 'sample', s.stage, 'done', 1, ?, ?, ?, ?, 'command'
       FROM tasks t, ${stages} s`,
    ).run(now, now, now, now);
    db.prepare(
      `INSERT INTO agent_runs (task_id, job_id, agent, stage, attempt, adapter, status, outcome, started_at,
         finished_at, exit_code, input_tokens, output_tokens, cost_usd)
       SELECT task_id, id, agent, stage, 1, 'command', 'finished', 'ok', ?, ?, 0, 1000, 300, 0.01 FROM jobs`,
    ).run(now, now);
    db.prepare(
      `WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 10)
       INSERT INTO events (task_id, kind, payload, created_at, fanned_out)
       SELECT t.id, CASE k.j % 3 WHEN 0 THEN 'stage_changed' WHEN 1 THEN 'run_started' ELSE 'run_finished' END,
         '{}', ?, 1 FROM tasks t, k`,
    ).run(now);
    db.exec('COMMIT');
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
}

/** Starts `orch serve --port 0` in the project and resolves with its address and a stop. */
async function startServe(project: TempProject, env: Record<string, string> = {}) {
  const server = spawn(process.execPath, [ORCH_BIN, 'serve', '--port', '0'], {
    cwd: project.dir,
    env: { ...project.env, ORCH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (!(url = /orch serve: (http:\/\/\S+)/.exec(out)?.[1])) {
    if (server.exitCode !== null) throw new Error(`orch serve exited (${server.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`orch serve did not start: ${out}`);
    await sleep(50);
  }
  return {
    url,
    output: () => out,
    stop: async () => {
      if (server.exitCode !== null) return;
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (server.exitCode === null) server.kill('SIGKILL');
    },
  };
}

async function history(): Promise<Figure[]> {
  const sizes = (process.env.ORCH_BENCH_HISTORY ?? (QUICK ? '1000,10000' : '1000,10000,100000'))
    .split(',')
    .map(Number);
  const runs = int('ORCH_BENCH_HISTORY_RUNS', 10, 3);
  // One project a size, all alive at once: every measure takes its samples size after size, in
  // turn, so a change in the shared machine's load reaches every size alike.
  const projects = sizes.map(() => makeProject({ config: pipelineConfig(['development'], NOOP) }));
  const samples = new Map<string, number[][]>();
  const add = (name: string, s: number, ms: number) => {
    if (!samples.has(name))
      samples.set(
        name,
        sizes.map(() => []),
      );
    samples.get(name)![s]!.push(ms);
  };
  const timed = async (name: string, s: number, body: () => Promise<unknown>) => {
    const t0 = performance.now();
    await body();
    add(name, s, performance.now() - t0);
  };
  const servers: Awaited<ReturnType<typeof startServe>>[] = [];
  try {
    sizes.forEach((size, s) => seedHistory(join(projects[s]!.dir, '.orch', 'orch.db'), size));
    const contexts = await Promise.all(projects.map((p) => p.context()));
    // Each round starts at another size: no size always follows the same one.
    const inTurn = (r: number) => sizes.map((_, i) => (i + r) % sizes.length);
    for (let r = 0; r < runs; r += 1)
      for (const s of inTurn(r))
        for (const ms of (await dispatchSamples(contexts[s]!, 1, r === 0 ? 2 : 0)).orch)
          add('dispatch latency p50', s, ms);
    await Promise.all(contexts.map((c) => c.close()));
    // `orch task list` as a user runs it: a whole process, its start-up included.
    const list = (s: number) =>
      runChecked([process.execPath, ORCH_BIN, 'task', 'list'], {
        cwd: projects[s]!.dir,
        env: projects[s]!.env,
      });
    for (let s = 0; s < sizes.length; s += 1) await list(s);
    for (let r = 0; r < runs; r += 1)
      for (const s of inTurn(r)) await timed('`orch task list` (whole process)', s, () => list(s));
    for (const p of projects) servers.push(await startServe(p));
    const get = async (s: number, path: string) => {
      const res = await fetch(`${servers[s]!.url}${path}`);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
      await res.arrayBuffer();
      return res;
    };
    // What the board reads as it loads: every page of the open tasks, a page of each finished column.
    const allPages = async (s: number, path: string) => {
      for (let after: string | null = null; ;) {
        const res = await get(s, `${path}&limit=500${after ? `&after=${after}` : ''}`);
        if (!(after = res.headers.get('X-Next-After'))) return;
      }
    };
    const dashboard = async (s: number) => {
      await get(s, '/');
      await Promise.all([
        get(s, '/api/projects'),
        allPages(s, BOARD_OPEN_TASKS),
        ...BOARD_FINISHED_TASKS.map((path) => get(s, path)),
      ]);
    };
    for (let r = -1; r < runs; r += 1)
      for (const s of inTurn(r + 1)) {
        // Keys spread over the history; the first round warms each server up and is not counted.
        const key = `T-${1 + (((r + 2) * 7919) % sizes[s]!)}`;
        const measures: [string, () => Promise<unknown>][] = [
          ['API task list, first page', () => get(s, '/api/tasks')],
          ['API task page', () => get(s, `/api/tasks/${key}`)],
          ["dashboard's first load (page and board data)", () => dashboard(s)],
        ];
        for (const [name, body] of measures) {
          if (r < 0) await body();
          else await timed(name, s, body);
        }
      }
  } finally {
    for (const server of servers) await server.stop();
    for (const p of projects) p.cleanup();
  }
  const results: Figure[] = [];
  for (const [s, size] of sizes.entries())
    for (const [name, bySize] of samples) {
      const v = quantile(bySize[s]!, 0.5);
      const ref = quantile(bySize[0]!, 0.5);
      const base = s === 0;
      results.push({
        name: `${name}, ${size} tasks in the store`,
        value: round(v),
        unit: 'ms p50',
        reference: base ? null : round(ref),
        ratio: base ? null : round(v / ref),
        target: base ? 'the reference of the larger histories' : `ratio ≤ 1.5 (vs ${sizes[0]} tasks)`,
        met: base ? null : v / ref <= 1.5,
      });
    }
  return results;
}

// ---------------------------------------------------------------- from the tracker to a running agent

/**
 * From an issue labelled for orch on the GitHub fake to its first agent's spawn, through a real
 * `orch serve`: by webhook (the time from the delivery's POST), and by polling at the default
 * interval (the time from the issue's creation, at random moments over one interval). The agent
 * stamps the moment it starts (bash's `EPOCHREALTIME`, no process of its own) and then does what
 * the no-op agent does.
 */
async function tracker(): Promise<Figure[]> {
  const issues = int('ORCH_BENCH_TRACKER_ISSUES', 50, 10);
  const withPolling = (process.env.ORCH_BENCH_TRACKER_POLL ?? (QUICK ? '0' : '1')) !== '0';
  const token = 'ghp_benchToken0123456789';
  const secret = 'bench-webhook-secret';
  const fake = await startGitHubFake({ token });
  /** The webhook side's answer times (the task imported), in ms. */
  const answered: number[] = [];
  /** Runs one side; the spawn latencies in ms. */
  const side = async (mode: 'webhook' | 'poll'): Promise<number[]> => {
    const stamps = join(mkdtempSync(join(tmpdir(), 'orch-bench-stamps-')), 'spawned');
    writeFileSync(stamps, '');
    const agent = `${stamps}.sh`;
    writeFileSync(agent, `#!/bin/bash\nprintf '%s\\n' "$EPOCHREALTIME" >> '${stamps}'\nexec '${NOOP}'\n`, {
      mode: 0o755,
    });
    const config = pipelineConfig(['development'], agent);
    const project = makeProject({
      config: {
        ...config,
        tracker: {
          kind: 'github',
          url: fake.url,
          repo: 'acme/app',
          import: { labels: [`orch-${mode}`] },
          webhook_secret_env: 'ORCH_BENCH_HOOK_SECRET',
          // Webhooks only on the webhook side; the default interval (60 s) on the other.
          ...(mode === 'webhook' ? { poll_interval_s: 0 } : {}),
        },
      },
    });
    const server = await startServe(project, { ORCH_GITHUB_TOKEN: token, ORCH_BENCH_HOOK_SECRET: secret });
    const spawned = () => readFileSync(stamps, 'utf8').split('\n').filter(Boolean).map(Number);
    const waitSpawns = async (n: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (spawned().length < n) {
        if (Date.now() > deadline)
          throw new Error(`${mode}: ${spawned().length} of ${n} agents spawned\n${server.output()}`);
        await sleep(5);
      }
    };
    // Wall-clock milliseconds, comparable with the agent's EPOCHREALTIME (seconds).
    const nowMs = () => performance.timeOrigin + performance.now();
    const latencies: number[] = [];
    try {
      if (mode === 'webhook') {
        // Two deliveries first, not counted: the tracker adapter loads on its first call.
        for (let i = 0; i < issues + 2; i += 1) {
          const n = fake.createIssue({ title: `webhook ${i}`, labels: ['orch-webhook'] });
          const t0 = nowMs();
          const sent = await sendWebhook(`${server.url}/api/webhooks/sample`, {
            kind: 'github',
            secret,
            event: 'issues',
            payload: fake.webhookPayload('issues', n, 'labeled'),
          });
          if (sent.status !== 202) throw new Error(`webhook: ${sent.status} ${sent.body}`);
          if (i >= 2) answered.push(nowMs() - t0);
          await waitSpawns(i + 1, 30_000);
          if (i >= 2) latencies.push(spawned()[i]! * 1000 - t0);
          // The task's run ends before the next delivery (the no-op agent takes milliseconds).
          await sleep(200);
        }
      } else {
        // The poll at start has run (nothing to import); issues appear at random over one interval.
        const interval = 60_000;
        const start = nowMs();
        const at = Array.from({ length: issues }, () => Math.random() * interval).sort((a, b) => a - b);
        const created: number[] = [];
        for (const [i, offset] of at.entries()) {
          await sleep(Math.max(0, start + offset - nowMs()));
          fake.createIssue({ title: `poll ${i}`, labels: ['orch-poll'] });
          created.push(nowMs());
        }
        await waitSpawns(issues, 3 * interval);
        // One poll imports many issues: the spawns come in the order of the tasks, not of the
        // issues, so each issue's latency pairs the sorted stamps with the creation order.
        const stampsMs = spawned()
          .map((s) => s * 1000)
          .sort((a, b) => a - b);
        for (const [i, c] of created.entries()) latencies.push(stampsMs[i]! - c);
      }
      return latencies;
    } finally {
      await server.stop();
      project.cleanup();
      rmSync(dirname(stamps), { recursive: true, force: true });
    }
  };
  try {
    const webhook = await side('webhook');
    const figures: Figure[] = [
      {
        name: `tracker webhook → first agent spawn p50 (GitHub fake, ${issues} issues)`,
        value: round(quantile(webhook, 0.5)),
        unit: 'ms',
        reference: null,
        ratio: null,
        target: 'p50 ≤ 250 ms',
        met: quantile(webhook, 0.5) <= 250,
      },
      {
        name: 'tracker webhook answered (its task imported) p50',
        value: round(quantile(answered, 0.5)),
        unit: 'ms',
        reference: null,
        ratio: null,
        target: 'none (part of the above)',
        met: null,
      },
      {
        name: 'tracker webhook → first agent spawn p99',
        value: round(quantile(webhook, 0.99)),
        unit: 'ms',
        reference: null,
        ratio: null,
        target: 'none (reported)',
        met: null,
      },
    ];
    if (withPolling) {
      const poll = await side('poll');
      for (const q of [0.5, 0.99])
        figures.push({
          name: `tracker polling (default 60 s) → first agent spawn p${q * 100}`,
          value: round(quantile(poll, q)),
          unit: 'ms',
          reference: round(quantile(webhook, q)),
          ratio: round(quantile(poll, q) / quantile(webhook, q)),
          target: 'none (the webhook figure is the reference)',
          met: null,
        });
    }
    return figures;
  } finally {
    await fake.close();
  }
}

// ---------------------------------------------------------------- outcome analytics at scale

/**
 * A history of `nTasks` tasks and `nRuns` runs over 60 days: six roles, three models and
 * efforts, two developer variants, one run in 13 failed; one to three attempts a task; twenty
 * events a task, three kinds in seven of them interventions.
 */
async function writeStatsHistory(store: Store, nTasks: number, nRuns: number): Promise<void> {
  const nowMs = Date.now();
  const now = new Date(nowMs).toISOString();
  const iso = (ms: number) => new Date(ms).toISOString();
  const p = await store.upsertProject({
    name: 'bench',
    rootPath: '/bench',
    baseBranch: 'main',
    keyPrefix: 'T',
  });
  const statuses = ['done', 'done', 'done', 'escalated', 'running'] as const;
  const roles = ['analyst', 'architect', 'developer', 'reviewer', 'tester', 'deployer'];
  const kinds = [
    'stage_changed',
    'run_started',
    'run_finished',
    'approved',
    'task_retried',
    'message',
    'gate_result',
  ];
  const inBatches = async <T>(rows: T[], insert: (batch: T[]) => Promise<unknown>) => {
    for (let i = 0; i < rows.length; i += 500) await insert(rows.slice(i, i + 500));
  };
  await store.tx(async (tx) => {
    const tasks = Array.from({ length: nTasks }, (_, j) => generatedTask(p.id, j, now, statuses[j % 5]!));
    await inBatches(tasks, (b) => tx.insertInto('tasks').values(b).execute());
    const first = (await tx.selectFrom('tasks').select('id').orderBy('id').executeTakeFirstOrThrow()).id;
    const runs = Array.from({ length: nRuns }, (_, j) => {
      const role = roles[j % roles.length]!;
      const start = nowMs - ((j * 7919) % (60 * 86_400)) * 1000;
      return {
        task_id: first + (j % nTasks),
        agent: role,
        stage: 'development' as const,
        attempt: 1,
        adapter: j % 10 ? 'claude-code' : 'codex',
        model: ['claude-opus-4-8', 'claude-sonnet-4-5', 'gpt-5'][j % 3]!,
        effort: ['high', 'xhigh', 'max'][(j >> 2) % 3]!,
        variant: role === 'developer' ? (['a', 'b'] as const)[(j >> 3) % 2] : null,
        status: 'finished' as const,
        outcome: j % 13 ? ('ok' as const) : ('failed' as const),
        started_at: iso(start),
        finished_at: iso(start + ((j * 31) % 3600) * 1000),
        duration_ms: ((j * 31) % 3600) * 1000,
        input_tokens: 1000,
        output_tokens: 300,
        cost_usd: 0.01 * (j % 7),
      };
    });
    const runIds: number[] = [];
    await inBatches(runs, async (b) =>
      runIds.push(
        ...(await tx.insertInto('agent_runs').values(b).returning('id').execute()).map((r) => r.id),
      ),
    );
    const attempts = Array.from({ length: nTasks }, (_, t) =>
      Array.from({ length: 1 + (t % 3) }, (_, i) => ({
        task_id: first + t,
        n: i + 1,
        diff_hash: `h${i}`,
        verdict: i === t % 3 ? ('approved' as const) : ('rejected' as const),
        feedback: '',
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0,
        duration_ms: 0,
        reason: null,
        dev_run_id: runIds[(t + nTasks * 2 * (i + 1)) % nRuns]!,
        review_run_id: runIds[(t + nTasks * (2 * (i + 1) + 1)) % nRuns]!,
        created_at: now,
      })),
    ).flat();
    await inBatches(attempts, (b) => tx.insertInto('attempts').values(b).execute());
    const events = Array.from({ length: nTasks * 20 }, (_, k) => ({
      task_id: first + Math.floor(k / 20),
      kind: kinds[k % kinds.length]!,
      payload: '{}',
      created_at: iso(nowMs - (k % 50) * 86_400_000),
      fanned_out: 1,
    }));
    await inBatches(events, (b) => tx.insertInto('events').values(b).execute());
  });
}

/** `orch stats` (the whole report) over the last 30 days of the history, by `by`; p50 of `samples`. */
async function statsFigures(store: Store, database: string, samples: number): Promise<Figure[]> {
  const since = new Date(Date.now() - 30 * 86_400_000).toISOString();
  const time = async (fn: () => Promise<unknown>) => {
    await fn();
    const xs: number[] = [];
    for (let i = 0; i < samples; i += 1) {
      const t0 = performance.now();
      await fn();
      xs.push(performance.now() - t0);
    }
    return quantile(xs, 0.5);
  };
  // What computing the figures outside the database would read first: the window's runs.
  const ref = await time(() =>
    store.db
      .selectFrom('agent_runs')
      .select(['task_id', 'agent', 'model', 'effort', 'variant', 'outcome', 'started_at', 'finished_at'])
      .select(['input_tokens', 'output_tokens', 'cost_usd'])
      .where('started_at', '>=', since)
      .execute(),
  );
  const figures: Figure[] = [];
  for (const by of ['role,model,effort', 'variant']) {
    const v = await time(() => statsReport({ store }, { since: '30d', by }));
    figures.push({
      name: `orch stats --by ${by}, 30 days of 100 000 runs (${database})`,
      value: round(v),
      unit: 'ms p50',
      reference: round(ref),
      ratio: round(v / ref),
      target: '≤ 1 000 ms',
      met: v <= 1000,
    });
  }
  return figures;
}

async function stats(): Promise<Figure[]> {
  const nTasks = int('ORCH_BENCH_STATS_TASKS', 10_000, 1000);
  const nRuns = int('ORCH_BENCH_STATS_RUNS', 100_000, 10_000);
  const samples = int('ORCH_BENCH_STATS_SAMPLES', 10, 3);
  const dir = mkdtempSync(join(tmpdir(), 'orch-bench-stats-'));
  const figures: Figure[] = [];
  try {
    const { db, dialect } = await openDatabase(join(dir, 'orch.db'));
    const store = new Store(db, dialect);
    await writeStatsHistory(store, nTasks, nRuns);
    figures.push(...(await statsFigures(store, 'SQLite', samples)));
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (!process.env.ORCH_BENCH_PG_URL && !(await pgUp())) return figures;
  const database = await createTestDatabase('orch_bench');
  try {
    const { db, dialect } = await openDatabase(database.url);
    const store = new Store(db, dialect);
    await writeStatsHistory(store, nTasks, nRuns);
    await sql`ANALYZE`.execute(db);
    figures.push(...(await statsFigures(store, 'PostgreSQL', samples)));
    await store.close();
  } finally {
    await database.drop();
  }
  return figures;
}

// ---------------------------------------------------------------- PostgreSQL claims

async function pgUp(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(5432, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
  });
}

async function pgClaims(): Promise<Figure[]> {
  const skipped = (why: string): Figure[] => [
    {
      name: `PostgreSQL claims (skipped: ${why})`,
      value: null,
      unit: '',
      reference: null,
      ratio: null,
      target: '',
      met: null,
    },
  ];
  if (!process.env.ORCH_BENCH_PG_URL && !(await pgUp())) return skipped('no server on 127.0.0.1:5432');
  const r = spawnSync(
    process.execPath,
    [join(HERE, 'pg-claims.ts'), '--jobs', '2000', '--samples', '100', '--rounds', '2'],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (r.status !== 0) {
    const why = (r.stderr || '').split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`;
    return skipped(`bench/pg-claims.ts failed: ${why.trim()}`);
  }
  const row = (label: string) => {
    const line = r.stdout.split('\n').find((l) => l.startsWith(label));
    const nums =
      line
        ?.slice(label.length)
        .match(/[\d.]+/g)
        ?.map(Number) ?? [];
    return { orch: nums[0]!, gw: nums[1]! };
  };
  const p50 = row('claim latency p50');
  const tput = row('throughput');
  return [
    {
      name: 'PostgreSQL claim latency p50 (vs graphile-worker)',
      value: p50.orch,
      unit: 'ms',
      reference: p50.gw,
      ratio: round(p50.orch / p50.gw),
      target: 'ratio ≤ 1',
      met: p50.orch <= p50.gw,
    },
    {
      name: 'PostgreSQL claim throughput (vs graphile-worker)',
      value: tput.orch,
      unit: 'jobs/s',
      reference: tput.gw,
      ratio: round(tput.orch / tput.gw),
      target: 'ratio ≥ 1',
      met: tput.orch >= tput.gw,
    },
  ];
}

// ---------------------------------------------------------------- main

const FIGURES: [string, () => Promise<Figure[]>][] = [
  ['dispatch', dispatch],
  ['throughput', throughput],
  ['ingest', ingest],
  ['memory', memory],
  ['api', api],
  ['history', history],
  ['tracker', tracker],
  ['stats', stats],
  ['pg', pgClaims],
  ['scale', () => scaleOut(join(HERE, 'fixtures'))],
];

const results: Figure[] = [];
const started = performance.now();
for (const [name, run] of FIGURES) {
  if (ONLY && !ONLY.includes(name)) continue;
  const t0 = performance.now();
  try {
    results.push(...(await run()));
  } catch (error) {
    results.push({
      name: `${name} (failed: ${(error as Error).message})`,
      value: null,
      unit: '',
      reference: null,
      ratio: null,
      target: '',
      met: false,
    });
  }
  console.error(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const show = (v: number | null) => (v === null ? '—' : String(v));
const rows = [
  ['figure', 'value', 'reference', 'ratio', 'target', 'met'],
  ...results.map((f) => [
    f.name,
    `${show(f.value)} ${f.unit}`.trim(),
    show(f.reference),
    show(f.ratio),
    f.target,
    f.met === null ? '—' : f.met ? 'yes' : 'NO',
  ]),
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);

const out = join(HERE, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(out, 'latest.svg'), renderSvg(results));
// Agents and git children are gone; the store handles are closed: nothing should keep us alive.
process.exit(0);
