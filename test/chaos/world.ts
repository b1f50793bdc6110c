/**
 * The worlds faults are injected into: a home on SQLite worked by `orch run`,
 * and a cluster on PostgreSQL worked by `orch worker` processes. Both are
 * driven through the real CLI; the test process only reads the store (and
 * adds tasks), SIGKILLs orchestrators, and restarts them. Each world has its
 * outside (outside.ts): a fake GitHub most of its tasks are imported from and
 * written back to, and a webhook receiver, both fed by orch's outbox.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeProject, waitFor, type TempProject } from '../helpers/kit.ts';
import { makeCluster, type Cluster, type Worker } from '../scale/cluster.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { LEDGER_FILE } from '../../src/runtime/ledger.ts';
import { safeSegment } from '../../src/runtime/context.ts';
import { chaosConfig, chaosScript, fromTracker, titleOf } from './workload.ts';
import { startOutside, type Outside } from './outside.ts';

/** How one orchestrator process ended. */
export interface OrchExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The suite SIGKILLed it (a fault), rather than it ending by itself. */
  killedByUs: boolean;
  /** The end of what it printed, for failure messages. */
  tail: string;
}

export interface World {
  readonly kind: 'sqlite' | 'postgres';
  /** Everything of the world lives under here: no process may be left with its cwd inside. */
  readonly root: string;
  /** A store context of the test's own, for reading state and adding tasks. */
  readonly ctx: OrchContext;
  /** Every orchestrator process that has ended so far. */
  readonly exits: OrchExit[];
  /** Every line the orchestrators printed, in the order they came. */
  readonly lines: string[];
  /** How many orchestrator processes have been started so far. */
  readonly started: number;
  /** Adds `n` tasks (numbered on from the last), returns their keys. */
  addTasks(n: number): Promise<string[]>;
  /** ORCH_* settings for the orchestrators started from now on (on top of the suite's own). */
  useEnv(env: Record<string, string>): void;
  /** Starts the orchestrator(s) on the queue. */
  start(): void;
  /** Starts one orchestrator in place of one that was killed. */
  replace(): void;
  /** Whether an orchestrator process is running now. */
  running(): boolean;
  /** SIGKILLs one running orchestrator (one running an agent when it can); false when none runs. */
  killOne(): Promise<boolean>;
  /**
   * Works the queue to the end: waits for the orchestrators to exit by
   * themselves, and starts another while a task is not finished (after a
   * kill, or a crash, which the exits record).
   */
  finish(timeoutMs: number): Promise<void>;
  /** Every copy of a task's attempt ledger (a cluster has one per worker clone). */
  ledgerFiles(key: string): string[];
  /** Every copy of a task's terminal packet. */
  packetFiles(key: string): string[];
  /** The main repository of the project (where the base branch is checked out). */
  readonly repo: string;
  /** The tracker and the webhook receiver the outbox delivers to. */
  readonly outside: Outside;
  cleanup(): Promise<void>;
}

/** Tasks not yet done, escalated or cancelled. */
export async function unfinished(ctx: OrchContext): Promise<number> {
  const tasks = await ctx.store.listTasks();
  return tasks.filter((t) => !['done', 'escalated', 'cancelled'].includes(t.status)).length;
}

/** Number of events recorded so far: the suite's clock for "a random moment of the run". */
export async function eventCount(ctx: OrchContext): Promise<number> {
  const row = await ctx.store.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Collects a child's output into `lines`; returns the end of its own output, for failure messages. */
function capture(child: ChildProcess, lines: string[]): () => string {
  let text = '';
  const keep = (d: Buffer) => {
    text += d.toString();
    const cut = text.lastIndexOf('\n');
    if (cut < 0) return;
    lines.push(...text.slice(0, cut).split('\n'));
    text = text.slice(cut + 1);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const mine = lines.length;
  return () => lines.slice(mine).slice(-60).join('\n') + text;
}

/**
 * Adds tasks: most filed as issues on the fake tracker and imported from it, the others straight
 * into the store (the CLI's `task add` does the same, a process each).
 */
async function addChaosTasks(ctx: OrchContext, outside: Outside, from: number, n: number): Promise<string[]> {
  const project = (await ctx.store.listProjects())[0]!;
  const keys: string[] = [];
  for (let i = from; i < from + n; i += 1) {
    if (fromTracker(i)) keys.push(await outside.importIssue(ctx, titleOf(i)));
    else keys.push((await ctx.store.createTask({ projectId: project.id, title: titleOf(i) })).key);
  }
  return keys;
}

// ------------------------------------------------------------------ SQLite

/** ORCH_* settings of every orchestrator the suite starts: quick reaper, a few agents at once. */
const ORCH_ENV = { ORCH_CONCURRENCY: '3', ORCH_REAPER_INTERVAL_MS: '500' };

export async function sqliteWorld(): Promise<World> {
  const outside = await startOutside();
  let project: TempProject;
  let ctx: OrchContext;
  try {
    project = makeProject({
      keyPrefix: 'CH',
      config: { ...chaosConfig('.orch/script.yaml'), ...outside.config },
    });
    writeFileSync(join(project.dir, '.orch', 'script.yaml'), stringify(chaosScript()));
    ctx = await project.context();
  } catch (error) {
    await outside.close();
    throw error;
  }
  const exits: OrchExit[] = [];
  const lines: string[] = [];
  let added = 0;
  let current: { child: ChildProcess; output: () => string; exited: Promise<void>; killed: boolean } | null =
    null;
  let started = 0;
  let extraEnv: Record<string, string> = {};

  const start = (): void => {
    if (current) throw new Error('orch run is already running');
    started += 1;
    const child = project.spawnOrch(['run', '--until-idle'], {
      env: { ...ORCH_ENV, ...outside.env, ...extraEnv },
    });
    const output = capture(child, lines);
    const run = {
      child,
      output,
      killed: false,
      exited: new Promise<void>((resolve) =>
        child.once('exit', (code, signal) => {
          exits.push({
            name: `orch run #${started}`,
            code,
            signal,
            killedByUs: run.killed,
            tail: output().slice(-4000),
          });
          if (current === run) current = null;
          resolve();
        }),
      ),
    };
    current = run;
  };

  return {
    kind: 'sqlite',
    root: project.dir,
    repo: project.dir,
    outside,
    ctx,
    exits,
    lines,
    get started() {
      return started;
    },
    async addTasks(n) {
      const keys = await addChaosTasks(ctx, outside, added + 1, n);
      added += n;
      return keys;
    },
    useEnv: (env) => void (extraEnv = env),
    start,
    replace: start,
    running: () => current !== null,
    async killOne() {
      const run = current;
      if (!run) return false;
      run.killed = true;
      run.child.kill('SIGKILL');
      await run.exited;
      return true;
    },
    async finish(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (current) {
          const run = current;
          const left = deadline - Date.now();
          const timedOut = await Promise.race([
            run.exited.then(() => false),
            new Promise<boolean>((r) => setTimeout(() => r(true), Math.max(0, left))),
          ]);
          if (timedOut) {
            throw new Error(`orch run did not finish within ${timeoutMs} ms:\n${run.output().slice(-4000)}`);
          }
        }
        if ((await unfinished(ctx)) === 0) return;
        if (Date.now() > deadline) throw new Error(`tasks still unfinished after ${timeoutMs} ms`);
        start();
      }
    },
    ledgerFiles: (key) => [join(project.dir, '.orch', 'artifacts', safeSegment(key), LEDGER_FILE)],
    packetFiles: (key) => [join(project.dir, '.orch', 'artifacts', safeSegment(key), 'terminal-packet.md')],
    async cleanup() {
      if (current) {
        current.killed = true;
        current.child.kill('SIGKILL');
        await current.exited;
      }
      await ctx.close();
      await outside.close();
      project.cleanup();
    },
  };
}

// ---------------------------------------------------------------- PostgreSQL

/** Lease and reaper short enough that a killed worker's job comes back within seconds. */
const WORKER_ENV = { ...ORCH_ENV, ORCH_LEASE_TTL_MS: '2000' };
const WORKER_ARGS = ['-c', '2', '--until-idle'];

export async function postgresWorld(): Promise<World> {
  const script = 'chaos/script.yaml';
  const outside = await startOutside();
  let cluster: Cluster;
  try {
    cluster = await makeCluster({
      config: { ...chaosConfig(script), ...outside.config },
      files: { [script]: stringify(chaosScript()) },
    });
  } catch (error) {
    await outside.close();
    throw error;
  }
  let ctx: OrchContext;
  try {
    ctx = await cluster.context();
  } catch (error) {
    await cluster.cleanup();
    await outside.close();
    throw error;
  }
  const exits: OrchExit[] = [];
  const lines: string[] = [];
  const killed = new Set<Worker>();
  const live = new Set<Worker>();
  let added = 0;
  let started = 0;
  let extraEnv: Record<string, string> = {};

  const startWorker = (): Worker => {
    started += 1;
    const worker = cluster.startWorker(`w${started}`, WORKER_ARGS, {
      ...WORKER_ENV,
      ...outside.env,
      ...extraEnv,
    });
    capture(worker.child, lines);
    live.add(worker);
    void worker.exited.then(({ code, signal }) => {
      live.delete(worker);
      exits.push({
        name: `orch worker ${worker.name}`,
        code,
        signal,
        killedByUs: killed.has(worker),
        tail: worker.output().slice(-4000),
      });
    });
    return worker;
  };
  const artifactCopies = (key: string, file: string): string[] => {
    const workers = join(cluster.root, 'workers');
    if (!existsSync(workers)) return [];
    return readdirSync(workers)
      .map((w) => join(workers, w, 'repos', 'repos', 'app', '.orch', 'artifacts', safeSegment(key), file))
      .filter((p) => existsSync(p));
  };

  return {
    kind: 'postgres',
    root: cluster.root,
    repo: cluster.registry,
    outside,
    ctx,
    exits,
    lines,
    get started() {
      return started;
    },
    async addTasks(n) {
      const keys = await addChaosTasks(ctx, outside, added + 1, n);
      added += n;
      return keys;
    },
    useEnv: (env) => void (extraEnv = env),
    start() {
      startWorker();
      startWorker();
    },
    replace: () => void startWorker(),
    running: () => live.size > 0,
    async killOne() {
      if (live.size === 0) return false;
      const agents = await ctx.store.getRunningAgents();
      const busy = [...live].find((w) => agents.some((a) => a.worker_id?.includes(`:${w.child.pid}:`)));
      const victim = busy ?? [...live][0]!;
      killed.add(victim);
      victim.child.kill('SIGKILL');
      await victim.exited;
      // Let the exit bookkeeping above run before anyone looks at `exits`.
      await new Promise((r) => setImmediate(r));
      return true;
    },
    async finish(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await waitFor(() => live.size === 0, Math.max(1, deadline - Date.now()), 'the workers to finish');
        await new Promise((r) => setImmediate(r));
        if ((await unfinished(ctx)) === 0) return;
        if (Date.now() > deadline) throw new Error(`tasks still unfinished after ${timeoutMs} ms`);
        startWorker();
      }
    },
    ledgerFiles: (key) => artifactCopies(key, LEDGER_FILE),
    packetFiles: (key) => artifactCopies(key, 'terminal-packet.md'),
    async cleanup() {
      await ctx.close().catch(() => {});
      await cluster.cleanup();
      await outside.close();
    },
  };
}
