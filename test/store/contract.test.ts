/**
 * The store contract: every store operation, run against SQLite and against
 * PostgreSQL (a fresh database for this file on the local server). What one
 * database cannot do is listed in GAPS, by test name and reason, and shows up
 * as a skipped test instead of silently passing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import type { Dialect } from '../../src/store/migrations.ts';
import type { Task } from '../../src/store/schema.ts';
import type { Stage } from '../../src/core/stages.ts';
import type { JobSpec } from '../../src/core/pipeline.ts';
import { PgWaker } from '../../src/runtime/waker.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';
import { waitFor } from '../helpers/kit.ts';

/** Tests one database cannot pass, by name, with the reason. */
const GAPS: Record<string, Partial<Record<Dialect, string>>> = {
  'a queued job notifies the jobs channel at commit, with its adapter': {
    sqlite: 'SQLite has no LISTEN/NOTIFY; schedulers on SQLite are woken by watching the database directory',
  },
  'a transaction aborted as a deadlock victim is run again': {
    sqlite: 'SQLite writers take the write lock up front (BEGIN IMMEDIATE), so they queue and never deadlock',
  },
};

/** The job of a role, with the adapter the plan would give it: developers run a command agent in these tests. */
const spec = (stage: Stage, agent: string, adapter?: string | null): JobSpec => ({
  stage,
  step: 'work',
  agent,
  adapter:
    adapter !== undefined
      ? adapter
      : agent === 'orch'
        ? null
        : agent === 'developer'
          ? 'command'
          : 'scripted',
});

/** Attempt `n` of a task, as the build loop records it: the first rejected, later ones approved. */
const attemptRow = (
  taskId: number,
  n: number,
  cost: number | null,
  over: Partial<{ feedback: string; reason: string | null; dev_run_id: number | null }> = {},
) => ({
  task_id: taskId,
  n,
  diff_hash: `h${n}`,
  verdict: n === 1 ? ('rejected' as const) : ('approved' as const),
  feedback: n === 1 ? 'fix it' : '',
  input_tokens: 100 * n,
  output_tokens: 10,
  cost_usd: cost,
  duration_ms: 1500,
  reason: null as string | null,
  dev_run_id: null as number | null,
  review_run_id: null,
  ...over,
});

interface Backend {
  dialect: Dialect;
  setup(): Promise<void>;
  /** A store on an empty database (same database for every call in one test). */
  open(): Promise<Store>;
  /** Empties the database between tests. */
  reset(): Promise<void>;
  teardown(): Promise<void>;
  /** PostgreSQL: the database URL. */
  url?: () => string;
}

function sqliteBackend(): Backend {
  let dir = '';
  let n = 0;
  let file = '';
  return {
    dialect: 'sqlite',
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'orch-contract-'));
    },
    async open() {
      const { db, dialect } = await openDatabase(file);
      return new Store(db, dialect);
    },
    async reset() {
      n += 1;
      file = join(dir, `store-${n}.db`);
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresBackend(): Backend {
  let database: TestDatabase | undefined;
  const backend: Backend = {
    dialect: 'postgres',
    async setup() {
      database = await createTestDatabase();
    },
    async open() {
      const { db, dialect } = await openDatabase(database!.url, { poolMax: 12 });
      return new Store(db, dialect);
    },
    async reset() {
      const store = await backend.open();
      await sql`TRUNCATE projects, tasks, agent_runs, jobs, attempts, gate_results, events, outbox, channel_refs, webhook_deliveries, task_dependencies, processes, adapter_pauses RESTART IDENTITY`.execute(
        store.db,
      );
      await store.close();
    },
    async teardown() {
      await database?.drop();
    },
    url: () => database!.url,
  };
  return backend;
}

describe.each([sqliteBackend(), postgresBackend()])('store contract on $dialect', (backend) => {
  const stores: Store[] = [];
  let store: Store;
  /** Another store on the same database: another process, as far as the database can tell. */
  const another = async (): Promise<Store> => {
    const s = await backend.open();
    stores.push(s);
    return s;
  };
  const contract = (name: string, fn: () => Promise<void>, timeoutMs?: number) => {
    const gap = GAPS[name]?.[backend.dialect];
    if (gap) it.skip(`${name} — not on ${backend.dialect}: ${gap}`, fn);
    else it(name, fn, timeoutMs);
  };

  beforeAll(() => backend.setup());
  afterAll(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await backend.teardown();
  });
  beforeEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await backend.reset();
    store = await another();
  });

  const project = (name = 'app', remoteUrl: string | null = 'file:///srv/app.git') =>
    store.upsertProject({
      name,
      rootPath: `/repos/${name}`,
      baseBranch: 'main',
      keyPrefix: name.toUpperCase(),
      remoteUrl,
    });

  /** A task moved to `stage` with a queued job there (as the engine leaves it). */
  async function taskAt(stage: Stage, role: string): Promise<Task> {
    const p = await project();
    const t = await store.createTask({ projectId: p.id, title: `work at ${stage}` });
    await store.tx(async (tx) => {
      await store.cancelJobsOfTask(tx, t.id);
      await store.advanceStage(tx, t, stage, { status: 'queued' });
      await store.enqueueJob(tx, { task: t, spec: spec(stage, role), repo: p.name });
    });
    return store.getTask(t.id);
  }

  /** A finished-looking developer run of the task (no job), with `usage` recorded; its id. */
  async function developerRun(taskId: number, usage: Parameters<Store['recordUsage']>[1]): Promise<number> {
    const id = await store.createRun({
      taskId,
      jobId: null,
      agent: 'developer',
      stage: 'development',
      attempt: 1,
      adapter: 'scripted',
      timeoutS: 60,
      logPath: '',
      workerId: 'w',
    });
    await store.recordUsage(id, usage);
    return id;
  }

  // ------------------------------------------------------------ migrations

  contract('migrates to the latest version, and opening again changes nothing', async () => {
    const names = async (s: Store) =>
      (await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(s.db)).rows.map(
        (r) => r.name,
      );
    const all = [
      '0001_initial',
      '0002_scale_out',
      '0003_outbox_trackers',
      '0004_state_machine',
      '0005_processes',
      '0006_dependencies',
      '0007_stats',
      '0008_say_now',
      '0009_usage_limits',
      '0010_task_lists',
      '0011_run_durations',
      '0012_claim_order',
      '0013_stop_wakes',
      '0014_claim_function',
    ];
    expect(await names(store)).toEqual(all);
    const again = await another();
    expect(await names(again)).toEqual(all);
  });

  // -------------------------------------------------------------- projects

  contract('upserts projects by name and keeps the remote unless told', async () => {
    const p = await project();
    expect(p).toMatchObject({ id: 1, name: 'app', remote_url: 'file:///srv/app.git', next_task_number: 1 });
    const moved = await store.upsertProject({
      name: 'app',
      rootPath: '/elsewhere/app',
      baseBranch: 'trunk',
      keyPrefix: 'APP',
    });
    expect(moved).toMatchObject({ id: 1, root_path: '/elsewhere/app', base_branch: 'trunk' });
    expect(await store.getProject(1)).toMatchObject({
      root_path: '/elsewhere/app',
      remote_url: 'file:///srv/app.git',
    });
    await store.upsertProject({
      name: 'app',
      rootPath: '/x',
      baseBranch: 'main',
      keyPrefix: 'APP',
      remoteUrl: null,
    });
    expect((await store.getProjectByName('app'))?.remote_url).toBeNull();
    expect(await store.getProjectByName('nope')).toBeUndefined();
    await project('lib');
    expect((await store.listProjects()).map((x) => x.name)).toEqual(['app', 'lib']);
    await expect(store.getProject(99)).rejects.toMatchObject({ code: 'unknown_project' });
  });

  // ----------------------------------------------------------------- tasks

  contract('creates tasks with sequential keys, each with its first job and an event', async () => {
    const p = await project();
    const a = await store.createTask({ projectId: p.id, title: 'first', labels: ['x'], priority: 2 });
    const b = await store.createTask({ projectId: p.id, title: 'second' });
    expect([a.key, b.key]).toEqual(['APP-1', 'APP-2']);
    expect(a).toMatchObject({ stage: 'created', status: 'queued', version: 0, labels: '["x"]', priority: 2 });
    expect(typeof a.id).toBe('number');
    const jobs = await store.db.selectFrom('jobs').selectAll().orderBy('id').execute();
    expect(jobs.map((j) => [j.task_id, j.stage, j.agent, j.status, j.adapter])).toEqual([
      [a.id, 'created', 'orch', 'queued', null],
      [b.id, 'created', 'orch', 'queued', null],
    ]);
    expect((await store.eventsAfter(0)).map((e) => e.kind)).toEqual(['task_created', 'task_created']);
    expect((await store.getTaskByKey('APP-2')).title).toBe('second');
    await expect(store.getTaskByKey('APP-9')).rejects.toMatchObject({ code: 'unknown_task' });
    await expect(store.getTask(99)).rejects.toMatchObject({ code: 'unknown_task' });
    await expect(store.createTask({ projectId: 42, title: 'x' })).rejects.toMatchObject({
      code: 'unknown_project',
    });
    // The failed creation left nothing behind.
    expect(await store.listTasks()).toHaveLength(2);
  });

  contract('lists tasks by project, status and stage', async () => {
    const p = await project();
    const q = await project('other');
    const a = await store.createTask({ projectId: p.id, title: 'a' });
    await store.createTask({ projectId: q.id, title: 'b' });
    await store.tx((tx) => store.advanceStage(tx, a, 'analysis', { status: 'running' }));
    expect((await store.listTasks({ projectId: q.id })).map((t) => t.title)).toEqual(['b']);
    expect((await store.listTasks({ status: 'running' })).map((t) => t.title)).toEqual(['a']);
    expect((await store.listTasks({ stage: 'created' })).map((t) => t.title)).toEqual(['b']);
    await store.tx((tx) => store.updateTask(tx, a.id, { feedback: 'more', attempt: 2 }));
    expect(await store.getTask(a.id)).toMatchObject({ feedback: 'more', attempt: 2, stage: 'analysis' });
  });

  contract('lists the open tasks, and pages newest first, without reading the finished history', async () => {
    const p = await project();
    const t: Task[] = [];
    for (const title of ['a', 'b', 'c', 'd', 'e']) t.push(await store.createTask({ projectId: p.id, title }));
    await store.tx((tx) => store.advanceStage(tx, t[0]!, 'done', { status: 'done' }));
    await store.tx((tx) => store.advanceStage(tx, t[2]!, 'cancelled', { status: 'cancelled' }));
    await store.tx((tx) => store.advanceStage(tx, t[3]!, 'development', { status: 'escalated' }));
    const titles = (ts: { title: string }[]) => ts.map((x) => x.title);
    // Open: not at done or cancelled, an escalated task included.
    expect(titles(await store.listTasks({ open: true }))).toEqual(['b', 'd', 'e']);
    expect(titles(await store.listTasks({ open: true, after: t[1]!.id, limit: 1 }))).toEqual(['d']);
    // Newest first, the cursor going on towards the older ones.
    expect(titles(await store.listTasks({ newest: true, limit: 2 }))).toEqual(['e', 'd']);
    expect(titles(await store.listTasks({ newest: true, after: t[3]!.id, limit: 2 }))).toEqual(['c', 'b']);
    expect(titles(await store.listTasks({ newest: true, stage: 'done' }))).toEqual(['a']);
    if (backend.dialect === 'sqlite') {
      // The open list reads the partial index that holds only open tasks, never the table's history.
      const plan = await sql<{ detail: string }>`EXPLAIN QUERY PLAN SELECT * FROM tasks
        WHERE stage NOT IN ('done', 'cancelled') ORDER BY id LIMIT 101`.execute(store.db);
      expect(plan.rows.map((r) => r.detail).join('; ')).toMatch(/USING INDEX tasks_open/);
    }
  });

  contract('advances a stage once: a stale version or stage changes nothing', async () => {
    const p = await project();
    const t = await store.createTask({ projectId: p.id, title: 't' });
    expect(await store.tx((tx) => store.advanceStage(tx, t, 'analysis', { status: 'queued' }))).toBe(true);
    expect(await store.tx((tx) => store.advanceStage(tx, t, 'architecture'))).toBe(false);
    const now = await store.getTask(t.id);
    expect(now).toMatchObject({ stage: 'analysis', version: 1 });
    expect(await store.tx((tx) => store.advanceStage(tx, now, 'architecture'))).toBe(true);
    const moves = (await store.eventsAfter(0))
      .filter((e) => e.kind === 'stage_changed')
      .map((e) => e.payload);
    expect(moves.map((m) => JSON.parse(m) as unknown)).toEqual([
      { from: 'created', to: 'analysis' },
      { from: 'analysis', to: 'architecture' },
    ]);
  });

  contract(
    'under contention, exactly one of many concurrent advances of a stage wins',
    async () => {
      const p = await project();
      const t = await store.createTask({ projectId: p.id, title: 'contended' });
      // Four "processes" (each its own connection pool), eight workers each, finishing the same
      // stage at once; each does what the engine does: read the task in its transaction,
      // check the stage, compare-and-set. SQLite's driver is synchronous: a second connection in
      // this process waiting on the write lock would block the one holding it, so there the
      // contenders share one connection (separate processes are covered by test/e2e).
      const processes =
        backend.dialect === 'postgres'
          ? [store, await another(), await another(), await another()]
          : [store, store, store, store];
      const attempts = processes.flatMap((s) =>
        Array.from({ length: 8 }, () =>
          s.tx(async (tx) => {
            const current = await s.getTask(t.id, tx);
            if (current.stage !== 'created') return false;
            return s.advanceStage(tx, current, 'analysis', { status: 'queued' });
          }),
        ),
      );
      const results = await Promise.all(attempts);
      expect(results.filter(Boolean)).toHaveLength(1);
      // Those that read the old version before the winner committed lost too.
      const stale = await Promise.all(
        processes.map((s) => s.tx((tx) => s.advanceStage(tx, t, 'analysis', { status: 'queued' }))),
      );
      expect(stale).toEqual([false, false, false, false]);
      expect(await store.getTask(t.id)).toMatchObject({ stage: 'analysis', version: 1 });
      const moves = (await store.eventsAfter(0)).filter((e) => e.kind === 'stage_changed');
      expect(moves).toHaveLength(1);
    },
    30_000,
  );

  contract('a failing transaction leaves nothing behind', async () => {
    const p = await project();
    await expect(
      store.tx(async (tx) => {
        await store.appendEvent(tx, null, 'doomed', {});
        await tx.updateTable('projects').set({ key_prefix: 'ZZZ' }).where('id', '=', p.id).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await store.eventsAfter(0)).toEqual([]);
    expect((await store.getProject(p.id)).key_prefix).toBe('APP');
  });

  // ------------------------------------------------------------------ jobs

  contract('queues a job with the role, step and adapter it is given', async () => {
    const dev = await taskAt('development', 'developer');
    const jobs = await store.db
      .selectFrom('jobs')
      .selectAll()
      .where('task_id', '=', dev.id)
      .orderBy('id')
      .execute();
    expect(jobs.map((j) => [j.stage, j.step, j.status, j.adapter, j.failures])).toEqual([
      ['created', 'work', 'cancelled', null, 0],
      ['development', 'work', 'queued', 'command', 0],
    ]);
    await store.tx((tx) => store.cancelJobsOfTask(tx, dev.id));
    const landing = await store.tx((tx) =>
      store.enqueueJob(tx, {
        task: dev,
        spec: { stage: 'deploy', step: 'land', agent: 'orch', adapter: null },
        repo: 'app',
      }),
    );
    expect(landing).toMatchObject({ stage: 'deploy', step: 'land', agent: 'orch', adapter: null });
  });

  contract('a task has at most one live job: a second is refused by the store', async () => {
    const dev = await taskAt('development', 'developer');
    await expect(
      store.tx((tx) => store.enqueueJob(tx, { task: dev, spec: spec('review', 'reviewer'), repo: 'app' })),
    ).rejects.toThrow();
    // Claimed (running) counts as live too.
    await store.claimJob('w', 60_000);
    await expect(
      store.tx((tx) => store.enqueueJob(tx, { task: dev, spec: spec('review', 'reviewer'), repo: 'app' })),
    ).rejects.toThrow();
    expect(await store.liveJobOf(dev.id)).toMatchObject({ stage: 'development', status: 'running' });
    // Once it is finished, the next one may come.
    const live = (await store.liveJobOf(dev.id))!;
    await store.tx((tx) => store.finishJob(tx, live.id, 'done'));
    const next = await store.tx((tx) =>
      store.enqueueJob(tx, { task: dev, spec: spec('review', 'reviewer'), repo: 'app' }),
    );
    expect(next).toMatchObject({ stage: 'review', adapter: 'scripted' });
  });

  contract('claims the oldest runnable job under a lease, and never a future one', async () => {
    const p = await project();
    const later = await store.createTask({ projectId: p.id, title: 'later' });
    const first = await store.createTask({ projectId: p.id, title: 'first' });
    await store.tx((tx) => store.requeueJob(tx, 1, 60_000, 'not yet'));
    const before = Date.now();
    const job = await store.claimJob('w1', 5_000);
    expect(job).toMatchObject({ task_id: first.id, status: 'running', lease_owner: 'w1', attempts: 1 });
    expect(Date.parse(job!.lease_expires_at!)).toBeGreaterThanOrEqual(before + 4_000);
    expect(await store.claimJob('w2', 5_000)).toBeNull();
    expect(await store.countJobs('queued')).toBe(1);
    expect(await store.countJobs('running')).toBe(1);
    const next = await store.nextRunAfter();
    expect(Date.parse(next!)).toBeGreaterThan(Date.now() + 50_000);
    expect(later.id).toBe(1);
  });

  contract(
    'a usage-limit pause holds back its adapter and credential only, queued now or later',
    async () => {
      const dev = await taskAt('development', 'developer');
      const rev = await taskAt('review', 'reviewer');
      /** A task whose development job is queued with `credential`. */
      const developing = async (title: string, credential?: string) => {
        const t = await store.createTask({ projectId: dev.project_id, title });
        return store.tx(async (tx) => {
          await store.cancelJobsOfTask(tx, t.id);
          const s = spec('development', 'developer');
          return store.enqueueJob(tx, { task: t, spec: credential ? { ...s, credential } : s, repo: 'app' });
        });
      };
      const own = await developing('own key', 'env:0123456789ab');
      const pause = (ms: number) =>
        store.tx((tx) =>
          store.pauses.pause(tx, {
            adapter: 'command',
            credential: '',
            ms,
            strikes: 1,
            window: 'five_hour',
            message: 'limit',
            taskKey: dev.key,
          }),
        );
      const first = await pause(60_000);
      expect(first.fresh).toBe(true);
      const claimed = await store.claimJobs('w1', 5_000, 10);
      // The paused credential's job stays; another adapter's and another credential's are taken.
      expect(claimed.map((j) => j.id).sort()).toEqual([own.id, (await store.liveJobOf(rev.id))!.id].sort());
      expect(claimed.find((j) => j.id === own.id)?.credential).toBe('env:0123456789ab');
      expect(await store.nextRunAfter()).toBe(first.until);
      // A job queued for it while paused waits too; so does one queued again; another credential's does not.
      const queued = await developing('later');
      expect((await store.getJob(queued.id))!.run_after).toBe(first.until);
      await store.tx((tx) => store.requeueJob(tx, own.id, 0, null, 'none'));
      expect((await store.claimJobs('w1', 5_000, 10)).map((j) => j.id)).toEqual([own.id]);
      // A live pause is lengthened, never shortened, and announced once.
      const again = await pause(1_000);
      expect(again).toEqual({ until: first.until, fresh: false });
      const longer = await pause(120_000);
      expect(longer.fresh).toBe(false);
      expect(longer.until > first.until).toBe(true);
      expect((await store.getJob(queued.id))!.run_after).toBe(longer.until);
      expect((await store.pauses.active()).map((p) => [p.adapter, p.credential, p.until_at])).toEqual([
        ['command', '', longer.until],
      ]);
    },
  );

  contract('claims several jobs in one statement, in order, up to the limit', async () => {
    const p = await project();
    for (let i = 0; i < 5; i += 1) await store.createTask({ projectId: p.id, title: `t${i}` });
    const batch = await store.claimJobs('w1', 5_000, 3);
    expect(batch.map((j) => j.id)).toEqual([1, 2, 3]);
    expect(batch.every((j) => j.lease_owner === 'w1' && j.status === 'running')).toBe(true);
    expect((await store.claimJobs('w2', 5_000, 10)).map((j) => j.id)).toEqual([4, 5]);
    expect(await store.claimJobs('w3', 5_000, 0)).toEqual([]);
  });

  if (backend.dialect === 'postgres')
    it('claims by walking the claim order, with or without statistics: never a read and sort of the whole queue', async () => {
      // A burst of jobs queued since the table was last analyzed, as in a fresh database.
      await sql`INSERT INTO jobs (task_id, project_id, agent, repo, stage, status, attempts, run_after, created_at)
        SELECT g, 0, 'orch', 'app', 'development', 'queued', 0, '2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z'
        FROM generate_series(1, 5000) g`.execute(store.db);
      // The plans of the statements inside the function, as the server ran them (auto_explain).
      const client = new pg.Client({ connectionString: backend.url!() });
      const logged: string[] = [];
      client.on('notice', (n) => logged.push(n.message ?? ''));
      await client.connect();
      try {
        await client.query(`LOAD 'auto_explain'`);
        await client.query(`SET auto_explain.log_min_duration = 0`);
        await client.query(`SET auto_explain.log_nested_statements = on`);
        await client.query(`SET client_min_messages = log`);
        let next = 1;
        for (const analyzed of [false, true]) {
          if (analyzed) await client.query('ANALYZE jobs');
          logged.length = 0;
          const { rows } = await client.query<{ task_id: number }>(
            `SELECT * FROM orch_claim_jobs('w', 60000, 4, NULL, NULL)`,
          );
          expect(rows.map((r) => r.task_id).sort((a, b) => a - b)).toEqual([
            next,
            next + 1,
            next + 2,
            next + 3,
          ]);
          next += 4;
          const plan = logged.find((m) => m.includes('UPDATE jobs')) ?? logged.join('\n');
          expect(plan, plan).toMatch(/Index Scan using jobs_claim/);
          expect(plan, plan).not.toMatch(/Sort|Seq Scan|Bitmap/);
        }
      } finally {
        await client.end();
      }
      // The store claims through it, in claim order.
      expect((await store.claimJobs('w', 60_000, 3)).map((j) => j.task_id)).toEqual([9, 10, 11]);
    });

  contract(
    'claims by task priority, then the oldest task (depth first), whatever order the jobs were queued in',
    async () => {
      const p = await project();
      const older = await store.createTask({ projectId: p.id, title: 'older' });
      const newer = await store.createTask({ projectId: p.id, title: 'newer' });
      const low = await store.createTask({ projectId: p.id, title: 'low', priority: -3 });
      const urgent = await store.createTask({ projectId: p.id, title: 'urgent', priority: 7 });
      // The older task moves on a stage: its job is queued after every other one.
      const next = await store.tx(async (tx) => {
        await store.cancelJobsOfTask(tx, older.id);
        return store.enqueueJob(tx, { task: older, spec: spec('analysis', 'analyst'), repo: p.name });
      });
      expect(next.priority).toBe(0);
      expect((await store.liveJobOf(urgent.id))!.priority).toBe(7);
      const first = await store.claimJob('w1', 5_000);
      expect(first).toMatchObject({ task_id: urgent.id, priority: 7 });
      const batch = await store.claimJobs('w1', 5_000, 10);
      expect(batch.map((j) => j.task_id)).toEqual([older.id, newer.id, low.id]);
      expect(batch[0]).toMatchObject({ id: next.id, stage: 'analysis' });
      // Due time decides only whether a job may be claimed: one not yet due is passed over.
      await store.tx((tx) => store.requeueJob(tx, first!.id, 60_000, 'later', 'none'));
      await store.tx((tx) => store.requeueJob(tx, batch[1]!.id, 0, null, 'none'));
      expect((await store.claimJobs('w2', 5_000, 10)).map((j) => j.task_id)).toEqual([newer.id]);
    },
  );

  contract('reads whether jobs are still held and asked to stop, without renewing their leases', async () => {
    const p = await project();
    const a = await store.createTask({ projectId: p.id, title: 'a' });
    const b = await store.createTask({ projectId: p.id, title: 'b' });
    const [ja, jb] = await store.claimJobs('w1', 5_000, 2);
    const before = (await store.getJob(ja!.id))!.lease_expires_at;
    let states = await store.leaseStates([ja!.id, jb!.id, 999], 'w1');
    expect([...states.entries()]).toEqual([
      [ja!.id, { held: true, interruptMessageId: null }],
      [jb!.id, { held: true, interruptMessageId: null }],
      [999, { held: false, interruptMessageId: null }],
    ]);
    expect((await store.getJob(ja!.id))!.lease_expires_at).toBe(before);
    expect((await store.leaseStates([ja!.id], 'w2')).get(ja!.id)!.held).toBe(false);
    await store.tx((tx) => store.cancelJobsOfTask(tx, b.id));
    states = await store.leaseStates([ja!.id, jb!.id], 'w1');
    expect(states.get(jb!.id)!.held).toBe(false);
    expect(states.get(ja!.id)!.held).toBe(true);
    expect(a.id).toBe(ja!.task_id);
    expect(await store.leaseStates([], 'w1')).toEqual(new Map());
  });

  contract('claims by label: a job whose adapter the worker lacks is left for others', async () => {
    const dev = await taskAt('development', 'developer');
    await taskAt('analysis', 'analyst');
    const scriptedOnly = { adapters: ['scripted'] };
    expect(await store.countJobs('queued', scriptedOnly)).toBe(1);
    expect(await store.countJobs('queued')).toBe(2);
    const a = await store.claimJob('scripted-worker', 5_000, scriptedOnly);
    expect(a).toMatchObject({ stage: 'analysis', adapter: 'scripted' });
    expect(await store.claimJob('scripted-worker', 5_000, scriptedOnly)).toBeNull();
    expect(await store.nextRunAfter(scriptedOnly)).toBeNull();
    const d = await store.claimJob('command-worker', 5_000, { adapters: ['command', 'scripted'] });
    expect(d).toMatchObject({ task_id: dev.id, adapter: 'command' });
    // Jobs without an adapter (stages with no agent) go to anyone.
    const p = await project('more');
    await store.createTask({ projectId: p.id, title: 'plain' });
    expect(await store.claimJob('scripted-worker', 5_000, scriptedOnly)).toMatchObject({ stage: 'created' });
  });

  contract(
    'under contention, every job is claimed exactly once',
    async () => {
      const p = await project();
      const total = 150;
      // One task per job: a task has one live job.
      for (let i = 0; i < total; i += 1) await store.createTask({ projectId: p.id, title: `t${i}` });
      // Four "processes", three claim loops each, claiming one or two at a time until the queue is dry.
      const processes = [store, await another(), await another(), await another()];
      const claimed: number[][] = [];
      await Promise.all(
        processes.flatMap((s, pi) =>
          [1, 2, 1].map(async (batch, li) => {
            const mine: number[] = [];
            claimed.push(mine);
            for (;;) {
              const jobs = await s.claimJobs(`w${pi}-${li}`, 30_000, batch);
              if (!jobs.length) return;
              mine.push(...jobs.map((j) => j.id));
            }
          }),
        ),
      );
      const all = claimed.flat();
      expect(all).toHaveLength(total);
      expect(new Set(all).size).toBe(total);
      // Work was really spread: more than one claimer got jobs.
      expect(claimed.filter((c) => c.length > 0).length).toBeGreaterThan(1);
      const rows = await store.db.selectFrom('jobs').select(['status', 'attempts', 'lease_owner']).execute();
      expect(rows.every((r) => r.status === 'running' && r.attempts === 1 && r.lease_owner)).toBe(true);
    },
    60_000,
  );

  contract('heartbeats extend only the owner’s lease of a running job', async () => {
    const p = await project();
    await store.createTask({ projectId: p.id, title: 't' });
    const job = (await store.claimJob('w1', 1_000))!;
    expect(await store.heartbeat(job.id, 'w1', 60_000)).toBe(true);
    expect(Date.parse((await store.getJob(job.id))!.lease_expires_at!)).toBeGreaterThan(Date.now() + 50_000);
    expect(await store.heartbeat(job.id, 'w2', 60_000)).toBe(false);
    await store.tx((tx) => store.finishJob(tx, job.id, 'done'));
    expect(await store.heartbeat(job.id, 'w1', 60_000)).toBe(false);
    expect(await store.getJob(job.id)).toMatchObject({
      status: 'done',
      lease_owner: null,
      lease_expires_at: null,
    });
  });

  contract(
    'finds jobs whose lease expired by the database clock; a requeue counts the try as told',
    async () => {
      const p = await project();
      for (const title of ['a', 'b', 'c']) await store.createTask({ projectId: p.id, title });
      const dead = (await store.claimJob('dead', 1))!;
      const alive = (await store.claimJob('alive', 60_000))!;
      const leaving = (await store.claimJob('leaving', 60_000))!;
      await new Promise((r) => setTimeout(r, 20));
      expect((await store.expiredJobs()).map((j) => j.id)).toEqual([dead.id]);
      expect((await store.runningJobs('leaving')).map((j) => j.id)).toEqual([leaving.id]);
      expect((await store.runningJobs()).map((j) => j.id)).toEqual([dead.id, alive.id, leaving.id]);
      await store.tx(async (tx) => {
        // Cut off: its claim counted it. Given back (a shutdown): the claim is undone. Failed: counted apart.
        await store.requeueJob(tx, dead.id, 0, 'lease expired', 'interruption');
        await store.requeueJob(tx, leaving.id, 0, 'shutdown', 'none');
        await store.requeueJob(tx, alive.id, 0, 'exit 1', 'failure');
      });
      expect(await store.getJob(dead.id)).toMatchObject({
        status: 'queued',
        lease_owner: null,
        last_error: 'lease expired',
      });
      const again = (await store.claimJobs('next', 60_000, 5)).sort((a, b) => a.id - b.id);
      expect(again.map((j) => [j.id, j.attempts, j.failures])).toEqual([
        [dead.id, 2, 0],
        [alive.id, 2, 1],
        [leaving.id, 1, 0],
      ]);
    },
  );

  contract('the database clock is ISO-8601 UTC, like the timestamps written from JavaScript', async () => {
    const before = Date.now();
    const now = await store.now();
    expect(now).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(now) - before)).toBeLessThan(60_000);
  });

  contract('requeues with a delay, cancels a task’s open jobs', async () => {
    const p = await project();
    const t = await store.createTask({ projectId: p.id, title: 't' });
    const job = (await store.claimJob('w', 60_000))!;
    await store.tx((tx) => store.requeueJob(tx, job.id, 30_000, 'flaky'));
    expect(await store.getJob(job.id)).toMatchObject({
      status: 'queued',
      last_error: 'flaky',
      lease_owner: null,
    });
    expect(await store.claimJob('w', 60_000)).toBeNull();
    const other = await store.createTask({ projectId: p.id, title: 'other' });
    await store.tx((tx) => store.cancelJobsOfTask(tx, t.id));
    await store.tx((tx) => store.enqueueJob(tx, { task: t, spec: spec('analysis', 'analyst'), repo: 'app' }));
    await store.tx((tx) => store.cancelJobsOfTask(tx, t.id));
    await store.tx((tx) => store.cancelJobsOfTask(tx, other.id));
    const rows = await store.db.selectFrom('jobs').select(['status', 'finished_at']).execute();
    expect(rows.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(rows.every((r) => r.finished_at)).toBe(true);
    expect(await store.nextRunAfter()).toBeNull();
  });

  contract(
    'a queued job notifies the jobs channel at commit, with its adapter',
    async () => {
      const waker = new PgWaker(backend.url!());
      const heard: (string | null | undefined)[] = [];
      let resolveHeard: () => void = () => {};
      const got = new Promise<void>((r) => (resolveHeard = r));
      await waker.start((adapter) => {
        heard.push(adapter);
        if (heard.length >= 2) resolveHeard();
      });
      try {
        const p = await project();
        const t = await store.createTask({ projectId: p.id, title: 't' });
        await store.tx(async (tx) => {
          await store.cancelJobsOfTask(tx, t.id);
          await store.enqueueJob(tx, { task: t, spec: spec('development', 'developer'), repo: 'app' });
          // Nothing is delivered before the commit: a woken worker must find the job.
          await new Promise((r) => setTimeout(r, 100));
          expect(heard).toEqual([null]);
        });
        await got;
        expect(heard).toEqual([null, 'command']);
        // A claim (queued → running) is not news for idle workers, nor is a heartbeat.
        const [job] = await store.claimJobs('w', 60_000, 5);
        await store.heartbeat(job!.id, 'w', 60_000);
        await new Promise((r) => setTimeout(r, 100));
        expect(heard).toHaveLength(2);
        // A person's message to stop its run wakes its worker, and so does a cancel of the running job.
        await sql`UPDATE jobs SET interrupt_message_id = 7 WHERE id = ${job!.id}`.execute(store.db);
        await waitFor(() => heard.length === 3, 5_000, 'the interrupt notification');
        await store.tx((tx) => store.cancelJobsOfTask(tx, t.id));
        await waitFor(() => heard.length === 4, 5_000, 'the cancel notification');
        expect(heard).toEqual([null, 'command', 'command', 'command']);
      } finally {
        await waker.close();
      }
    },
    10_000,
  );

  contract(
    'a transaction aborted as a deadlock victim is run again',
    async () => {
      const p = await project();
      const t = await store.createTask({ projectId: p.id, title: 't' });
      const other = await another();
      let arrived = 0;
      let release: () => void = () => {};
      const bothLocked = new Promise<void>((r) => (release = r));
      const meet = async () => {
        arrived += 1;
        if (arrived === 2) release();
        await Promise.race([bothLocked, new Promise((r) => setTimeout(r, 3_000))]);
      };
      // Opposite lock orders: task then job, job then task. One side is the deadlock victim.
      const runs = { a: 0, b: 0 };
      await Promise.all([
        store.tx(async (tx) => {
          runs.a += 1;
          await store.updateTask(tx, t.id, { status_detail: 'a' });
          await meet();
          await tx.updateTable('jobs').set({ last_error: 'a' }).where('task_id', '=', t.id).execute();
        }),
        other.tx(async (tx) => {
          runs.b += 1;
          await tx.updateTable('jobs').set({ last_error: 'b' }).where('task_id', '=', t.id).execute();
          await meet();
          await other.updateTask(tx, t.id, { status_detail: 'b' });
        }),
      ]);
      expect(runs.a + runs.b).toBe(3);
      expect((await store.getTask(t.id)).status_detail).toMatch(/^[ab]$/);
    },
    15_000,
  );

  // ------------------------------------------------------------------ runs

  contract(
    'a stop asked for a message reaches the heartbeat while an agent runs, for that try only',
    async () => {
      const t = await taskAt('development', 'developer');
      const message = await store.tx((tx) =>
        store.insertEvent(tx, t.id, 'human_message', { text: 'hi', by: 'me' }),
      );
      // Queued, no run: nothing to stop.
      expect(await store.tx((tx) => store.requestInterrupt(tx, t.id, message.id))).toBeNull();
      const job = (await store.claimJob('w1', 60_000))!;
      expect(await store.tx((tx) => store.requestInterrupt(tx, t.id, message.id))).toBeNull();
      const run = (adapter: string) =>
        store.createRun({
          taskId: t.id,
          jobId: job.id,
          agent: 'developer',
          stage: 'development',
          attempt: 1,
          adapter,
          timeoutS: 3600,
          logPath: '',
          workerId: 'w1',
        });
      // A command stage's process reads no message.
      const command = await run('command-stage');
      expect(await store.tx((tx) => store.requestInterrupt(tx, t.id, message.id))).toBeNull();
      await store.tx((tx) =>
        store.finishRun(tx, command, { outcome: 'ok', exitCode: 0, resultText: null, error: null }),
      );
      const agent = await run('claude-code');
      expect(await store.renewLease(job.id, 'w1', 60_000)).toEqual({ held: true, interruptMessageId: null });
      expect((await store.tx((tx) => store.requestInterrupt(tx, t.id, message.id)))?.id).toBe(agent);
      expect(await store.renewLease(job.id, 'w1', 60_000)).toEqual({
        held: true,
        interruptMessageId: message.id,
      });
      expect(await store.renewLease(job.id, 'w2', 60_000)).toEqual({ held: false, interruptMessageId: null });
      // A run that ended before the heartbeat saw the request is not stopped after the fact: its
      // gates go on, and the message waits for the next run.
      await store.tx((tx) =>
        store.finishRun(tx, agent, { outcome: 'ok', exitCode: 0, resultText: null, error: null }),
      );
      expect(await store.renewLease(job.id, 'w1', 60_000)).toEqual({ held: true, interruptMessageId: null });
      await store.db.updateTable('agent_runs').set({ status: 'running' }).where('id', '=', agent).execute();
      // The try ends and the job is claimed again: the stop was that try's, not the next one's.
      await store.tx((tx) =>
        store.finishRun(tx, agent, { outcome: 'redirected', exitCode: null, resultText: null, error: null }),
      );
      await store.tx((tx) => store.requeueJob(tx, job.id, 0, null, 'none'));
      const again = (await store.claimJob('w1', 60_000))!;
      expect(again).toMatchObject({ id: job.id, attempts: 1, interrupt_message_id: null });
      expect(await store.renewLease(job.id, 'w1', 60_000)).toEqual({ held: true, interruptMessageId: null });
      // The run of the earlier try, were it still marked running, is not this try's to stop.
      await store.db
        .updateTable('agent_runs')
        .set({ status: 'running', started_at: '2000-01-01T00:00:00.000Z' })
        .where('id', '=', agent)
        .execute();
      expect(await store.tx((tx) => store.requestInterrupt(tx, t.id, message.id))).toBeNull();
    },
  );

  contract('records a run: process, stamp, usage and its end, exactly once', async () => {
    const t = await taskAt('development', 'developer');
    const job = (await store.claimJob('w1', 60_000))!;
    const runId = await store.createRun({
      taskId: t.id,
      jobId: job.id,
      agent: 'developer',
      stage: 'development',
      attempt: 1,
      adapter: 'command',
      timeoutS: 3600,
      logPath: '/logs/1.log',
      workerId: 'w1',
    });
    expect((await store.getJob(job.id))?.run_id).toBe(runId);
    await store.stampRun(runId, 'claude-opus-4-8', 'xhigh');
    await store.setRunProcess(runId, 1234, 1234);
    const agents = await store.getRunningAgents();
    expect(agents).toEqual([
      expect.objectContaining({
        run_id: runId,
        job_id: job.id,
        task_key: t.key,
        model: 'claude-opus-4-8',
        pid: 1234,
      }),
    ]);
    await store.recordUsage(runId, null);
    await store.recordUsage(runId, {
      inputTokens: 10,
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costUsd: 0.125,
      model: null,
      sessionId: 's-1',
      numTurns: 3,
    });
    const run = (await store.getRun(runId))!;
    expect(run).toMatchObject({
      model: 'claude-opus-4-8',
      effort: 'xhigh',
      input_tokens: 10,
      cost_usd: 0.125,
      session_id: 's-1',
      num_turns: 3,
      status: 'running',
      duration_ms: null,
    });
    expect((await store.runningRuns()).map((r) => r.id)).toEqual([runId]);
    const finish = { exitCode: 0, outcome: 'ok' as const, resultText: 'done', error: null };
    expect(await store.tx((tx) => store.finishRun(tx, runId, finish))).toBe(true);
    expect(await store.tx((tx) => store.finishRun(tx, runId, { ...finish, outcome: 'reaped' }))).toBe(false);
    expect(await store.getRun(runId)).toMatchObject({ status: 'finished', outcome: 'ok', exit_code: 0 });
    // Its wall time is stored with its end, for the analytics.
    const ended = (await store.getRun(runId))!;
    expect(ended.duration_ms).toBe(Date.parse(ended.finished_at!) - Date.parse(ended.started_at!));
    expect(await store.runningRuns()).toEqual([]);
    expect((await store.runsOfTask(t.id)).map((r) => r.id)).toEqual([runId]);
  });

  contract('records a run with its job’s link, its event and a log named after its id, at once', async () => {
    const t = await taskAt('development', 'developer');
    const job = (await store.claimJob('w1', 60_000))!;
    const create = (jobId: number | null, logPath: string | { before: string; after: string }) =>
      store.createRun({
        taskId: t.id,
        jobId,
        agent: 'developer',
        stage: 'development',
        attempt: 2,
        adapter: 'command',
        timeoutS: 600,
        logPath,
        workerId: 'w1',
      });
    const runId = await create(job.id, { before: '/logs/T-1/', after: '-developer.log' });
    expect(await store.getRun(runId)).toMatchObject({
      id: runId,
      task_id: t.id,
      job_id: job.id,
      agent: 'developer',
      stage: 'development',
      attempt: 2,
      adapter: 'command',
      timeout_s: 600,
      log_path: `/logs/T-1/${runId}-developer.log`,
      worker_id: 'w1',
      status: 'running',
    });
    expect((await store.getRun(runId))?.started_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await store.getJob(job.id))?.run_id).toBe(runId);
    // The event's payload is the same text whichever way it was written.
    const started = (await store.eventsAfter(0)).filter((e) => e.kind === 'run_started');
    expect(started.map((e) => [e.task_id, e.payload])).toEqual([
      [t.id, JSON.stringify({ run_id: runId, role: 'developer', stage: 'development' })],
    ]);
    // Without a job, or with the path given whole: the next id, nothing linked.
    const next = await create(null, '/logs/whole.log');
    expect(next).toBeGreaterThan(runId);
    expect(await store.getRun(next)).toMatchObject({ job_id: null, log_path: '/logs/whole.log' });
    expect((await store.getJob(job.id))?.run_id).toBe(runId);
  });

  contract('sums a project’s spend as a number, zero when there is none', async () => {
    const t = await taskAt('analysis', 'analyst');
    expect(await store.projectSpendSince(t.project_id, '2000-01-01T00:00:00.000Z')).toBe(0);
    for (const cost of [0.1, 0.2, null]) {
      const id = await store.createRun({
        taskId: t.id,
        jobId: null,
        agent: 'analyst',
        stage: 'analysis',
        attempt: null,
        adapter: 'scripted',
        timeoutS: 60,
        logPath: '',
        workerId: 'w',
      });
      await store.recordUsage(id, { inputTokens: 1, outputTokens: 1, costUsd: cost });
    }
    const spend = await store.projectSpendSince(t.project_id, '2000-01-01T00:00:00.000Z');
    expect(typeof spend).toBe('number');
    expect(spend).toBeCloseTo(0.3, 10);
    expect(await store.projectSpendSince(t.project_id, '2999-01-01T00:00:00.000Z')).toBe(0);
  });

  // -------------------------------------------------------- attempts, gates, events

  contract(
    'the writer’s reads of a task, together, are its spend, attempts and unfinished blockers',
    async () => {
      const t = await taskAt('review', 'reviewer');
      const none = await store.tx((tx) => store.writerReads(tx, t.id));
      expect(none).toEqual({ spend: { tokens: 0, usd: 0 }, attempts: [], blockers: [] });
      for (const [cost, tokens] of [
        [0.1, 7],
        [null, 5],
        [0.2, 3],
      ] as const) {
        await developerRun(t.id, { inputTokens: tokens, outputTokens: 1, costUsd: cost });
      }
      const attempt = (n: number, cost: number | null) =>
        attemptRow(t.id, n, cost, {
          feedback: n === 1 ? 'fix "it"\n' : '',
          reason: n === 1 ? 'why' : null,
          dev_run_id: n,
        });
      await store.tx((tx) => store.recordAttempt(tx, attempt(2, 0.1 + 0.2)));
      await store.tx((tx) => store.recordAttempt(tx, attempt(1, null)));
      const blocker = async (title: string) => store.createTask({ projectId: t.project_id, title });
      const [open, finished] = [await blocker('open'), await blocker('finished')];
      await store.tx((tx) =>
        store.dependencies.replaceImported(tx, t, [
          { blockerTaskId: open.id, source: 'github', externalId: '2', externalKey: 'acme/app#2' },
          { blockerTaskId: finished.id, source: 'github', externalId: '3', externalKey: 'acme/app#3' },
          { blockerTaskId: null, source: 'github', externalId: '9', externalKey: 'acme/app#9' },
        ]),
      );
      await store.tx((tx) => store.advanceStage(tx, finished, 'done', { status: 'done' }));
      const together = await store.tx((tx) => store.writerReads(tx, t.id));
      expect(together).toEqual({
        spend: await store.taskSpend(t.id),
        attempts: await store.attemptsOfTask(t.id),
        blockers: await store.dependencies.unfinishedBlockers(t.id),
      });
      expect(together.spend.tokens).toBe(18);
      expect(together.spend.usd).toBeCloseTo(0.3, 10);
      expect(together.attempts.map((a) => [a.n, a.cost_usd])).toEqual([
        [1, null],
        [2, 0.1 + 0.2],
      ]);
      expect(together.blockers.map((b) => b.key)).toEqual([open.key, 'acme/app#9']);
    },
  );

  contract('records attempts once per number, in order, with exact types', async () => {
    const t = await taskAt('review', 'reviewer');
    const attempt = (n: number, cost: number | null) => attemptRow(t.id, n, cost);
    await store.tx((tx) => store.recordAttempt(tx, attempt(2, 0.5)));
    await store.tx((tx) => store.recordAttempt(tx, attempt(1, null)));
    await expect(store.tx((tx) => store.recordAttempt(tx, attempt(1, 1)))).rejects.toThrow();
    const rows = await store.attemptsOfTask(t.id);
    expect(rows.map((a) => [a.n, a.verdict, a.cost_usd, a.input_tokens])).toEqual([
      [1, 'rejected', null, 100],
      [2, 'approved', 0.5, 200],
    ]);
  });

  contract('records gate results and reads events after an id, in pages', async () => {
    const t = await taskAt('testing', 'tester');
    const at = new Date().toISOString();
    await store.tx((tx) =>
      store.recordGate(tx, {
        task_id: t.id,
        stage: 'testing',
        name: 'check_ci_green',
        passed: 0,
        output_tail: '1 failed',
        started_at: at,
        finished_at: at,
      }),
    );
    expect(await store.gatesOfTask(t.id)).toEqual([
      expect.objectContaining({ name: 'check_ci_green', passed: 0, output_tail: '1 failed' }),
    ]);
    for (let i = 0; i < 5; i += 1) await store.tx((tx) => store.appendEvent(tx, t.id, 'tick', { i }));
    const all = await store.eventsAfter(0);
    const page = await store.eventsAfter(all[1]!.id, 2);
    expect(page.map((e) => e.id)).toEqual([all[2]!.id, all[3]!.id]);
    expect(JSON.parse(all.at(-1)!.payload)).toEqual({ i: 4 });
  });

  contract(
    'what the state machine reads: spend, approvals since entering a stage, events by payload',
    async () => {
      const t = await taskAt('development', 'developer');
      const run = (cost: number | null, tokens: number) =>
        developerRun(t.id, {
          inputTokens: tokens,
          outputTokens: 1,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          costUsd: cost,
          model: null,
          sessionId: null,
          numTurns: null,
        });
      expect(await store.taskSpend(t.id)).toEqual({ tokens: 0, usd: 0 });
      const first = await run(0.25, 10);
      await run(null, 20);
      expect(await store.taskSpend(t.id)).toEqual({ tokens: 32, usd: 0.25 });
      await store.setRunLogPath(first, '/logs/x.log');
      await store.setRunDiffHash(first, 'abc');
      expect(await store.getRun(first)).toMatchObject({ log_path: '/logs/x.log', diff_hash: 'abc' });

      // An approval counts only for the pass through the stage it was given in.
      const approve = (at: string) =>
        store.tx((tx) =>
          store.recordGate(tx, {
            task_id: t.id,
            stage: 'development',
            name: 'check_human_approval',
            passed: 1,
            output_tail: 'ok',
            started_at: at,
            finished_at: at,
          }),
        );
      expect(await store.isApproved(store.db, t.id, 'development')).toBe(false);
      await approve(new Date().toISOString());
      expect(await store.isApproved(store.db, t.id, 'development')).toBe(true);
      await new Promise((r) => setTimeout(r, 5));
      const now = await store.getTask(t.id);
      await store.tx(async (tx) => {
        await store.advanceStage(tx, now, 'review');
        await store.advanceStage(tx, { ...now, stage: 'review', version: now.version + 1 }, 'development');
      });
      expect(await store.enteredStageAt(store.db, t.id, 'development')).not.toBe('');
      expect(await store.isApproved(store.db, t.id, 'development')).toBe(false);

      await store.tx((tx) => store.appendEvent(tx, t.id, 'pull_request', { number: 1, state: 'open' }));
      expect(await store.hasEvent(store.db, t.id, 'pull_request', { number: 1, state: 'open' })).toBe(true);
      expect(await store.hasEvent(store.db, t.id, 'pull_request', { number: 1, state: 'merged' })).toBe(
        false,
      );
      // lockTask reads the row inside a write transaction (and locks it on PostgreSQL).
      expect((await store.tx((tx) => store.lockTask(tx, t.id))).stage).toBe('development');
      await expect(store.tx((tx) => store.lockTask(tx, 999))).rejects.toMatchObject({ code: 'unknown_task' });
    },
  );

  contract('report queries: the queue, runs with their task, events with keys, figures', async () => {
    const t = await taskAt('review', 'reviewer');
    const runId = await store.createRun({
      taskId: t.id,
      jobId: null,
      agent: 'reviewer',
      stage: 'review',
      attempt: 1,
      adapter: 'scripted',
      timeoutS: 60,
      logPath: '',
      workerId: 'w',
    });
    const r = store.reports;
    expect((await r.queuedJobs()).map((j) => [j.task, j.stage, j.role, j.tries])).toEqual([
      [t.key, 'review', 'reviewer', 0],
    ]);
    expect(await r.runWithTask(runId)).toMatchObject({ id: runId, task_key: t.key });
    expect((await r.runningRunsWithTask()).map((x) => x.id)).toEqual([runId]);
    expect(
      (await r.listRuns({ status: 'running', role: 'reviewer', limit: 5 })).map((x) => x.task_key),
    ).toEqual([t.key]);
    expect((await r.runsTouchedSince('2000-01-01T00:00:00.000Z', t.id)).map((x) => x.id)).toEqual([runId]);
    await store.tx((tx) =>
      store.finishRun(tx, runId, { exitCode: 0, outcome: 'ok', resultText: '', error: null }),
    );
    expect(await r.runningRunsWithTask()).toEqual([]);
    const figures = await r.runFigures();
    expect(figures).toEqual([
      expect.objectContaining({ agent: 'reviewer', status: 'finished', outcome: 'ok' }),
    ]);
    const events = await r.eventsAfter(0, 100, t.id);
    expect(events.every((e) => e.task_key === t.key)).toBe(true);
    expect(await r.lastEventId()).toBe(events.at(-1)!.id);
    expect((await r.eventById(events[0]!.id))?.kind).toBe('task_created');
    expect((await r.eventPayloads('run_finished')).map((p) => p.outcome)).toEqual(['ok']);
    expect(await r.taskCounts()).toEqual([{ stage: 'review', status: 'queued', n: 1 }]);
    expect(await r.gateCounts()).toEqual([]);
    expect(await store.outbox.latestEventOfTask(t.id)).toBe(events.at(-1)!.id);
  });

  // ------------------------------------------------------------------ outbox

  /** Fans every pending event out to the given channels (all kinds routed). */
  async function fanOutAll(channels: string[]) {
    const events = await store.outbox.pendingEvents(1000);
    await store.outbox.fanOut(
      events.map((e) => e.id),
      events.flatMap((event) => channels.map((channel) => ({ channel, event, kind: event.kind }))),
    );
    return events;
  }

  contract(
    'fans events out once per channel, and a second fan-out of the same events adds nothing',
    async () => {
      const p = await project();
      const t = await store.createTask({ projectId: p.id, title: 'one' });
      await store.tx((tx) => store.appendEvent(tx, t.id, 'tick', {}));
      const pending = await store.outbox.pendingEvents(100);
      expect(pending.map((e) => [e.kind, e.project_id])).toEqual([
        ['task_created', p.id],
        ['tick', p.id],
      ]);
      await fanOutAll(['app/a', 'app/b']);
      // Another process fanned out the same events meanwhile: the unique (channel, event) keeps one each.
      await store.outbox.fanOut(
        pending.map((e) => e.id),
        pending.map((event) => ({ channel: 'app/a', event, kind: event.kind })),
      );
      expect(await store.outbox.pendingEvents(100)).toEqual([]);
      const items = (await store.outbox.items()).sort(
        (x, y) => x.channel.localeCompare(y.channel) || x.id - y.id,
      );
      expect(items.map((i) => [i.channel, i.kind, i.task_id, i.status])).toEqual([
        ['app/a', 'task_created', t.id, 'pending'],
        ['app/a', 'tick', t.id, 'pending'],
        ['app/b', 'task_created', t.id, 'pending'],
        ['app/b', 'tick', t.id, 'pending'],
      ]);
    },
  );

  contract(
    'claims only the oldest pending delivery of each channel and task, and never the same one twice',
    async () => {
      const p = await project();
      const tasks: Task[] = [];
      for (let i = 0; i < 6; i += 1) tasks.push(await store.createTask({ projectId: p.id, title: `t${i}` }));
      for (const t of tasks) await store.tx((tx) => store.appendEvent(tx, t.id, 'tick', {}));
      await fanOutAll(['app/a', 'app/b']);
      // 6 tasks × 2 channels × 2 events; claimers racing get the 12 heads, each once.
      const claimers = await Promise.all([1, 2, 3, 4].map(() => another()));
      const claimed = (
        await Promise.all(claimers.map((s, i) => s.outbox.claimDue(`w${i}`, 60_000, 50)))
      ).flat();
      expect(claimed).toHaveLength(12);
      expect(new Set(claimed.map((c) => c.id)).size).toBe(12);
      expect(claimed.every((c) => c.kind === 'task_created')).toBe(true);
      // Leased: nothing more to claim until one is settled.
      expect(await store.outbox.claimDue('w9', 60_000, 50)).toEqual([]);
      const first = claimed.find((c) => c.channel === 'app/a' && c.task_id === tasks[0]!.id)!;
      await store.outbox.markSent(first);
      const next = await store.outbox.claimDue('w9', 60_000, 50);
      expect(next.map((n) => [n.channel, n.task_id, n.kind])).toEqual([['app/a', tasks[0]!.id, 'tick']]);
      // A failure retried later holds the task's later deliveries back; a dead one does not.
      await store.outbox.markFailed(next[0]!, 'boom', new Date(Date.now() + 60_000));
      expect(await store.outbox.claimDue('w9', 60_000, 50)).toEqual([]);
      const other = claimed.find((c) => c.channel === 'app/b' && c.task_id === tasks[1]!.id)!;
      await store.outbox.markFailed(other, 'gone', null);
      const after = await store.outbox.claimDue('w9', 60_000, 50);
      expect(after.map((n) => [n.channel, n.task_id, n.kind])).toEqual([['app/b', tasks[1]!.id, 'tick']]);
      expect((await store.outbox.items({ status: 'dead' })).map((d) => d.last_error)).toEqual(['gone']);
    },
  );

  contract(
    'a delivery whose lease ran out and was taken by another cannot be renewed by its first owner',
    async () => {
      const p = await project();
      await store.createTask({ projectId: p.id, title: 'one' });
      await fanOutAll(['app/a']);
      const [mine] = await store.outbox.claimDue('w1', 1, 10);
      expect(await store.outbox.renewLease(mine!, 'w1', 60_000)).toBe(true);
      await store.db
        .updateTable('outbox')
        .set({ lease_expires_at: new Date(0).toISOString() })
        .execute();
      const [theirs] = await (await another()).outbox.claimDue('w2', 60_000, 10);
      expect(theirs!.id).toBe(mine!.id);
      expect(await store.outbox.renewLease(mine!, 'w1', 60_000)).toBe(false);
    },
  );

  contract(
    'a sent delivery supersedes the earlier pending ones of its task on a coalescing channel',
    async () => {
      const p = await project();
      const t = await store.createTask({ projectId: p.id, title: 'one' });
      for (let i = 0; i < 3; i += 1) await store.tx((tx) => store.appendEvent(tx, t.id, 'tick', { i }));
      const events = await fanOutAll(['app/chat']);
      const [head] = await store.outbox.claimDue('w', 60_000, 10);
      await store.outbox.markSent(head!, events.at(-1)!.id);
      expect((await store.outbox.items()).map((i) => i.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    },
  );

  contract('keeps channel refs per channel and task, and webhook deliveries once', async () => {
    expect(await store.outbox.getRef('app/chat', 1)).toBeNull();
    await store.outbox.setRef('app/chat', 1, { message_id: 5 });
    await store.outbox.setRef('app/chat', 1, { message_id: 6 });
    await store.outbox.setRef('app/other', 1, { ts: '1.2' });
    expect(await store.outbox.getRef('app/chat', 1)).toEqual({ message_id: 6 });
    expect(await store.outbox.firstDelivery('github', 'abc')).toBe(true);
    expect(await store.outbox.firstDelivery('github', 'abc')).toBe(false);
    expect(await store.outbox.firstDelivery('gitea', 'abc')).toBe(true);
  });

  contract('imports a task from a tracker once', async () => {
    const p = await project();
    const external = { source: 'github', id: '12', key: 'acme/app#12', url: 'https://x/12', updatedAt: 'T1' };
    const [a, b] = await Promise.all([
      store.createTask({ projectId: p.id, title: 'from github', external }),
      (await another())
        .createTask({ projectId: p.id, title: 'from github', external })
        .catch((e: Error) => e),
    ]);
    const tasks = await store.listTasks({ projectId: p.id });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      external_source: 'github',
      external_id: '12',
      external_key: 'acme/app#12',
    });
    expect((a as Task).id).toBe(tasks[0]!.id);
    // The racing import either found the task or hit the unique index; it never made a second one.
    if (!(b instanceof Error)) expect(b.id).toBe(tasks[0]!.id);
  });

  // ------------------------------------------------------------------ processes

  contract(
    'records a gate process from start to end, finalizes it once, and lists what still runs',
    async () => {
      const p = await project();
      const t = await store.createTask({ projectId: p.id, title: 'gated' });
      const base = {
        taskId: t.id,
        jobId: 7,
        name: 'check_ci_green',
        identity: 'boot:123',
        workerId: 'h:1:a',
      };
      const gate = await store.processes.start({ ...base, kind: 'gate', pid: 4242, pgid: 4242 });
      const command = await store.processes.start({
        ...base,
        kind: 'command',
        name: 'deploy',
        pid: 4343,
        pgid: 4343,
      });
      expect((await store.processes.running()).map((r) => [r.id, r.kind, r.pgid, r.status])).toEqual([
        [gate, 'gate', 4242, 'running'],
        [command, 'command', 4343, 'running'],
      ]);
      // The owner and a recovering process race to finalize: one wins, the other changes nothing.
      const [mine, theirs] = await Promise.all([
        store.processes.finish(gate, { outcome: 'ok', exitCode: 0 }),
        (await another()).processes.finish(gate, {
          outcome: 'interrupted',
          exitCode: -9,
          detail: 'owner died',
        }),
      ]);
      expect([mine, theirs].sort()).toEqual([false, true]);
      const [row] = (await store.processes.ofTask(t.id)).filter((r) => r.id === gate);
      expect(row).toMatchObject({ status: 'finished', job_id: 7, worker_id: 'h:1:a', identity: 'boot:123' });
      expect(row!.outcome === 'ok' ? row!.exit_code : row!.detail).toBe(
        row!.outcome === 'ok' ? 0 : 'owner died',
      );
      expect(row!.finished_at).not.toBeNull();
      expect((await store.processes.running()).map((r) => r.id)).toEqual([command]);
    },
  );
});
