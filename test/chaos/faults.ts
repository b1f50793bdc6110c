/**
 * The faults the chaos suite injects. Each is a name, how many tasks its wave
 * adds and how many times it strikes (a bounded and a full size), and an
 * injector that strikes while the orchestrators work the wave. The suite
 * then works the queue to the end and checks the invariants (invariants.ts).
 *
 * To add a fault, push an entry onto {@link FAULTS}: the suite runs it,
 * checks the invariants after it and reports it in docs/reliability.md like
 * the others.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { waitFor } from '../helpers/kit.ts';
import type { RecordedRequest } from '../fakes/trackers/kit.ts';
import type { Rng } from './rng.ts';
import { eventCount, unfinished, type World } from './world.ts';

export interface FaultRun {
  world: World;
  rng: Rng;
  /** How many times to strike. */
  times: number;
  /** The full run (`npm run test:chaos`) rather than the bounded one. */
  full: boolean;
  /** The keys of the wave's tasks. */
  keys: readonly string[];
  /** Records what happened, for the report. */
  note(text: string): void;
  /** Records something the fault saw go wrong (it fails the fault, like a broken invariant). */
  violation(text: string): void;
}

export interface FaultPlan {
  /** Tasks the fault's wave adds. */
  tasks: number;
  /** Times the fault strikes. */
  times: number;
}

export interface Fault {
  name: string;
  world: 'sqlite' | 'postgres';
  /** What is done to the system, for the report. */
  injects: string;
  plan(full: boolean): FaultPlan;
  /** ORCH_* settings of the orchestrators that work the fault's wave. */
  orchEnv?: Record<string, string>;
  /** Terminal reasons the fault may legitimately cause, besides the ones the tasks are scripted to reach. */
  mayEscalate?: readonly string[];
  /** Called before the wave starts; returns why the fault cannot be injected here (the fault is then skipped), or null. */
  prepare?(world: World): Promise<string | null>;
  /** Strikes while the wave is worked; returns how many times it did. */
  inject(run: FaultRun): Promise<number>;
  /** Called after the wave has been worked to the end, whatever happened; may add notes. */
  teardown?(world: World, note: (text: string) => void): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Events a task records on its way through the pipeline, roughly: spreads the strikes over the run. */
const EVENTS_PER_TASK = 12;

/**
 * Waits for a random moment of the run: a seeded number of events from now
 * (spread so the remaining strikes fit in the remaining work), then a
 * seeded pause of up to a quarter second. False when the work ended first.
 */
async function randomMoment(run: FaultRun, strikesLeft: number): Promise<boolean> {
  const { ctx } = run.world;
  const left = await unfinished(ctx);
  const span = Math.max(2, Math.floor((left * EVENTS_PER_TASK) / (strikesLeft + 1)));
  const target = (await eventCount(ctx)) + run.rng.int(1, span);
  const pauseMs = run.rng.int(0, 250);
  const over = async () => !run.world.running() || (await unfinished(ctx)) === 0;
  await waitFor(async () => (await over()) || (await eventCount(ctx)) >= target, 120_000, `event ${target}`);
  if (await over()) return false;
  await sleep(pauseMs);
  return !(await over());
}

// ------------------------------------------------------------------ faults

const orchKill: Fault = {
  name: 'orch run SIGKILLed',
  world: 'sqlite',
  injects: 'SIGKILL of `orch run` at a random moment (seeded), then a restart',
  plan: (full) => (full ? { tasks: 20, times: 5 } : { tasks: 6, times: 2 }),
  async inject(run) {
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) {
        run.note(`the work ended before strike ${i + 1}`);
        break;
      }
      const events = await eventCount(run.world.ctx);
      if (!(await run.world.killOne())) break;
      struck += 1;
      run.note(`killed at event ${events}`);
      run.world.replace();
    }
    return struck;
  },
};

/**
 * A child process holding SQLite's write lock (`BEGIN EXCLUSIVE`) for
 * `holdMs`: longer than the store's busy timeout, so every write orch tries
 * meanwhile is refused at least once and must be waited out.
 */
async function holdDatabase(dbPath: string, holdMs: number): Promise<void> {
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const { DatabaseSync } = require('node:sqlite');
       const db = new DatabaseSync(process.argv[1], { timeout: 60000 });
       db.exec('BEGIN EXCLUSIVE');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`,
      dbPath,
      String(holdMs),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  holder.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(holder, 'exit')) as [number | null];
  if (code !== 0 || !out.includes('locked')) throw new Error(`the lock holder failed (exit ${code}): ${out}`);
}

const sqliteLocked: Fault = {
  name: 'SQLite database locked',
  world: 'sqlite',
  injects:
    'another process holds the write lock (`BEGIN EXCLUSIVE`) for 11–20 s, longer than the 10 s busy timeout orch used to give up after',
  plan: (full) => (full ? { tasks: 6, times: 2 } : { tasks: 3, times: 1 }),
  async inject(run) {
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) break;
      const holdMs = run.full ? run.rng.int(12_000, 20_000) : 11_000;
      const from = run.world.lines.length;
      await holdDatabase(join(run.world.repo, '.orch', 'orch.db'), holdMs);
      struck += 1;
      // What orch said meanwhile: before the fix, statements failed with "database is locked".
      const refused = run.world.lines.slice(from).filter((l) => /database is locked|stayed locked/.test(l));
      run.note(`held ${(holdMs / 1000).toFixed(1)} s, ${refused.length} statements refused`);
      for (const line of refused.slice(0, 3))
        run.violation(`a statement was refused instead of waiting for the lock: ${line.slice(0, 300)}`);
    }
    return struck;
  },
};

let logMount: string | null = null;
let freedAt: string | null = null;

/** Fills a filesystem to the last byte with one file; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  // A last partial block may fit a few bytes more.
  try {
    const tail = openSync(path, 'a');
    try {
      for (;;) writeSync(tail, Buffer.alloc(1));
    } finally {
      closeSync(tail);
    }
  } catch {
    /* full */
  }
  return path;
}

function unmount(dir: string): void {
  for (const args of [[dir], ['-l', dir]]) {
    if (spawnSync('umount', args, { encoding: 'utf8' }).status === 0) return;
  }
  throw new Error(`could not unmount the tmpfs at ${dir}`);
}

const logFsFull: Fault = {
  name: 'log filesystem full',
  world: 'sqlite',
  injects: "the home's log directory is a 2 MiB tmpfs, filled to the last byte for 2–6 s, then freed",
  plan: (full) => (full ? { tasks: 6, times: 3 } : { tasks: 3, times: 1 }),
  // A run that cannot write its prompt file fails like any run that cannot start: retried with
  // backoff, then escalated. A ladder of 1 + 2 + 4 s outlasts most fills, so the work goes on once
  // the space is back; a task whose tries all fall inside a fill ends agent_failure.
  orchEnv: { ORCH_RETRY_BASE_MS: '1000', ORCH_RETRY_MAX_MS: '4000' },
  mayEscalate: ['agent_failure'],
  async prepare(world) {
    const dir = join(world.repo, '.orch', 'logs');
    mkdirSync(dir, { recursive: true });
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0)
      return `mount -t tmpfs failed (${(r.stderr || r.error?.message || '').trim()}): needs root or CAP_SYS_ADMIN`;
    logMount = dir;
    return null;
  },
  async inject(run) {
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) break;
      const filler = fill(logMount!);
      const from = new Date().toISOString();
      const holdMs = run.full ? run.rng.int(2_000, 6_000) : 3_000;
      await sleep(holdMs);
      rmSync(filler);
      freedAt = new Date().toISOString();
      struck += 1;
      const runs = await run.world.ctx.store.db
        .selectFrom('agent_runs')
        .select(['outcome', 'error'])
        .where('started_at', '>=', from)
        .execute();
      const noSpace = runs.filter((r) => /ENOSPC|no space/i.test(r.error ?? '')).length;
      run.note(
        `full for ${(holdMs / 1000).toFixed(1)} s: ${noSpace} of ${runs.length} runs failed for lack of space`,
      );
    }
    return struck;
  },
  async teardown(world, note) {
    if (freedAt) {
      const after = await world.ctx.store.db
        .selectFrom('agent_runs')
        .select('id')
        .where('started_at', '>', freedAt)
        .where('outcome', '=', 'ok')
        .execute();
      note(`${after.length} runs succeeded after the space was freed`);
      freedAt = null;
    }
    if (!logMount) return;
    const dir = logMount;
    logMount = null;
    unmount(dir);
  },
};

/** The git directory of each linked worktree of `repo`, by the worktree's path. */
function worktreeGitDirs(repo: string): Map<string, string> {
  const admin = join(repo, '.git', 'worktrees');
  const found = new Map<string, string>();
  if (!existsSync(admin)) return found;
  for (const name of readdirSync(admin)) {
    const gitdir = join(admin, name, 'gitdir');
    if (existsSync(gitdir))
      found.set(dirname(resolve(readFileSync(gitdir, 'utf8').trim())), join(admin, name));
  }
  return found;
}

/** Lock files as a git killed in the middle of its work leaves them. */
function plantLocks(world: World, keys: readonly string[]): string[] {
  const git = join(world.repo, '.git');
  const locks = [join(git, 'index.lock'), join(git, 'refs', 'heads', 'main.lock')];
  const worktrees = worktreeGitDirs(world.repo);
  for (const key of keys) {
    const admin = [...worktrees.entries()].find(([path]) => path.endsWith(`/${key}`))?.[1];
    if (!admin) continue;
    locks.push(join(admin, 'index.lock'), join(git, 'refs', 'heads', 'orch', `${key}.lock`));
  }
  for (const lock of locks) {
    mkdirSync(dirname(lock), { recursive: true });
    closeSync(openSync(lock, 'w'));
  }
  return locks;
}

const planted: string[] = [];

const gitLocks: Fault = {
  name: 'stale git lock files',
  world: 'sqlite',
  injects:
    '`orch run` SIGKILLed, then `index.lock` (main repository and task worktrees), `refs/heads/main.lock` and `refs/heads/orch/<KEY>.lock` left behind before the restart',
  plan: (full) => (full ? { tasks: 6, times: 2 } : { tasks: 3, times: 1 }),
  async inject(run) {
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) break;
      if (!(await run.world.killOne())) break;
      const inFlight = [];
      for (const key of run.keys) {
        const t = await run.world.ctx.store.getTaskByKey(key);
        if (!['done', 'escalated'].includes(t.status)) inFlight.push(key);
      }
      const locks = plantLocks(run.world, inFlight);
      struck += 1;
      run.world.replace();
      run.note(`planted ${locks.length} lock files`);
      planted.push(...locks);
    }
    return struck;
  },
  async teardown(_world, note) {
    // A lock orch never ran into (its task escalated before committing again) is still there.
    const left = planted.filter((l) => existsSync(l));
    if (planted.length) note(`orch cleared ${planted.length - left.length} of ${planted.length}`);
    planted.length = 0;
    for (const l of left) rmSync(l, { force: true });
  },
};

const workerKill: Fault = {
  name: 'orch worker SIGKILLed',
  world: 'postgres',
  injects: 'SIGKILL of an `orch worker` (PostgreSQL) while it runs an agent, then a replacement worker',
  plan: (full) => (full ? { tasks: 8, times: 2 } : { tasks: 3, times: 1 }),
  async inject(run) {
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) break;
      const agents = (await run.world.ctx.store.getRunningAgents()).length;
      if (!(await run.world.killOne())) break;
      struck += 1;
      run.note(`killed a worker (${agents} agents running in the cluster)`);
      run.world.replace();
    }
    return struck;
  },
};

/** How the tracker refuses writes in one strike: the strikes take these in turn. */
interface Refusal {
  status: number;
  headers?: Record<string, string>;
  says: string;
}
const REFUSALS: readonly Refusal[] = [
  { status: 503, says: '503' },
  { status: 503, headers: { 'retry-after': '1' }, says: '503 with Retry-After: 1' },
  { status: 429, headers: { 'retry-after': '1' }, says: '429 with Retry-After: 1' },
];
const WRITES = ['POST', 'PATCH', 'DELETE'];

/**
 * Writes that reached the tracker sooner after a refusal carrying `Retry-After` than it asked
 * (the outbox holds the whole channel that long), among the refusals in `requests[from, to)`.
 * Only one process delivers in the SQLite world, so every write the fake got is that process's.
 */
function earlyRetries(
  requests: readonly RecordedRequest[],
  from: number,
  to: number,
  refusal: Refusal,
): string[] {
  const asked = Number(refusal.headers?.['retry-after']);
  if (!asked) return [];
  const early: string[] = [];
  for (let i = from; i < to; i += 1) {
    const r = requests[i]!;
    if (!WRITES.includes(r.method) || r.status !== refusal.status) continue;
    const next = requests.slice(i + 1).find((n) => WRITES.includes(n.method));
    // Timers may fire a millisecond early by the wall clock.
    if (next && next.at < r.at + asked * 1000 - 5)
      early.push(`${next.method} ${next.path} came ${next.at - r.at} ms after ${refusal.says}`);
  }
  return early;
}

const trackerDown: Fault = {
  name: 'tracker answers 5xx',
  world: 'sqlite',
  injects:
    'the fake GitHub refuses every write (POST, PATCH, DELETE) for 2–6 s, then recovers: 503, 503 with `Retry-After: 1`, 429 with `Retry-After: 1` in turn',
  plan: (full) => (full ? { tasks: 12, times: 3 } : { tasks: 6, times: 2 }),
  async inject(run) {
    const { service } = run.world.outside.github;
    let struck = 0;
    for (let i = 0; i < run.times; i += 1) {
      if (!(await randomMoment(run, run.times - i))) {
        run.note(`the work ended before strike ${i + 1}`);
        break;
      }
      const refusal = REFUSALS[i % REFUSALS.length]!;
      const holdMs = run.full ? run.rng.int(2_000, 6_000) : 2_000;
      const from = service.requests.length;
      for (const method of WRITES)
        service.fail({
          status: refusal.status,
          ...(refusal.headers ? { headers: refusal.headers } : {}),
          times: Number.MAX_SAFE_INTEGER,
          method,
        });
      await sleep(holdMs);
      service.recover();
      struck += 1;
      const to = service.requests.length;
      const refused = service.requests.slice(from, to).filter((r) => r.status === refusal.status);
      run.note(`${refusal.says} for ${(holdMs / 1000).toFixed(1)} s: ${refused.length} writes refused`);
      // The write after the last refusal comes once the wait it asked for is over (or never, when
      // the wave has nothing more to write).
      const last = refused.at(-1);
      if (last)
        await waitFor(
          async () =>
            service.requests.some((r) => r.at > last.at && WRITES.includes(r.method)) ||
            (await unfinished(run.world.ctx)) === 0,
          60_000,
          'a write after the tracker recovered',
        );
      for (const early of earlyRetries(service.requests, from, to, refusal))
        run.violation(`Retry-After not honoured: ${early}`);
    }
    return struck;
  },
};

/** Every fault, in the order the suite injects them. */
export const FAULTS: Fault[] = [orchKill, sqliteLocked, logFsFull, gitLocks, trackerDown, workerKill];
