/**
 * The stats store's contract, on SQLite and on PostgreSQL (a fresh database
 * for this file): one small history, written row by row, whose every figure
 * was counted by hand below. The statements only read, so one history serves
 * every test of a database.
 */
import type { TaskStatus } from '../../src/core/stages.ts';
import type { TerminalReason } from '../../src/core/build-loop.ts';
import type { RunOutcome } from '../../src/core/run-outcome.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import type { Dialect } from '../../src/store/migrations.ts';
import type { StatsFilter } from '../../src/store/stats-store.ts';
import { assembleGroups, compareVariants, type StatsDimension } from '../../src/core/stats.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';

const DAY = 86_400_000;
const NOW = Date.now();
const at = (ms: number) => new Date(ms).toISOString();
/** The window: the last 30 days. */
const SINCE = at(NOW - 30 * DAY);
const RECENT = NOW - DAY;
const OLD = NOW - 60 * DAY;

interface RunSpec {
  task: string;
  role: 'developer' | 'reviewer';
  adapter?: string;
  variant: string | null;
  /** null: still running. */
  outcome: string | null;
  /** Seconds after the task's base time. */
  start: number;
  seconds: number | null;
  input: number | null;
  output: number | null;
  cost: number | null;
}

const MODEL: Record<string, [string, string]> = {
  A: ['model-a', 'xhigh'],
  B: ['model-b', 'max'],
  none: ['model-r', 'high'],
};

/*
 * APP-1 done: rejected once, approved at attempt 2; one approval (a human).
 * APP-2 done: variant B, approved first time.
 * APP-3 escalated (max_attempts): a failed run, then a rejection; one retry, two messages.
 * APP-4 running: variant B's run in flight.
 * APP-5 done 60 days ago: outside the 30-day window.
 * LIB-1 done, in another project, with the command adapter, judged without a reviewer.
 */
const RUNS: (RunSpec & { name: string })[] = [
  {
    name: 'r1',
    task: 'APP-1',
    role: 'developer',
    variant: 'A',
    outcome: 'ok',
    start: 0,
    seconds: 10,
    input: 100,
    output: 50,
    cost: 0.1,
  },
  {
    name: 'r2',
    task: 'APP-1',
    role: 'reviewer',
    variant: null,
    outcome: 'ok',
    start: 20,
    seconds: 2,
    input: 40,
    output: 10,
    cost: 0.02,
  },
  {
    name: 'r3',
    task: 'APP-1',
    role: 'developer',
    variant: 'A',
    outcome: 'ok',
    start: 30,
    seconds: 20,
    input: 100,
    output: 50,
    cost: 0.1,
  },
  {
    name: 'r4',
    task: 'APP-1',
    role: 'reviewer',
    variant: null,
    outcome: 'ok',
    start: 60,
    seconds: 4,
    input: 40,
    output: 10,
    cost: 0.02,
  },
  {
    name: 'r5',
    task: 'APP-2',
    role: 'developer',
    variant: 'B',
    outcome: 'ok',
    start: 0,
    seconds: 30,
    input: 300,
    output: 100,
    cost: 0.3,
  },
  {
    name: 'r6',
    task: 'APP-2',
    role: 'reviewer',
    variant: null,
    outcome: 'ok',
    start: 40,
    seconds: 2,
    input: 40,
    output: 10,
    cost: 0.02,
  },
  {
    name: 'r7',
    task: 'APP-3',
    role: 'developer',
    variant: 'A',
    outcome: 'failed',
    start: 0,
    seconds: 5,
    input: 10,
    output: 5,
    cost: null,
  },
  {
    name: 'r8',
    task: 'APP-3',
    role: 'developer',
    variant: 'A',
    outcome: 'ok',
    start: 10,
    seconds: 10,
    input: 100,
    output: 50,
    cost: 0.1,
  },
  {
    name: 'r9',
    task: 'APP-3',
    role: 'reviewer',
    variant: null,
    outcome: 'ok',
    start: 30,
    seconds: 6,
    input: 40,
    output: 10,
    cost: 0.02,
  },
  {
    name: 'r10',
    task: 'APP-4',
    role: 'developer',
    variant: 'B',
    outcome: null,
    start: 0,
    seconds: null,
    input: null,
    output: null,
    cost: null,
  },
  {
    name: 'r11',
    task: 'APP-5',
    role: 'developer',
    variant: 'A',
    outcome: 'ok',
    start: 0,
    seconds: 10,
    input: 100,
    output: 50,
    cost: 1,
  },
  {
    name: 'r12',
    task: 'LIB-1',
    role: 'developer',
    adapter: 'command',
    variant: 'A',
    outcome: 'ok',
    start: 0,
    seconds: 40,
    input: 100,
    output: 50,
    cost: 0.5,
  },
];

const TASKS: { key: string; project: 'app' | 'lib'; status: string; reason?: string; base: number }[] = [
  { key: 'APP-1', project: 'app', status: 'done', base: RECENT },
  { key: 'APP-2', project: 'app', status: 'done', base: RECENT },
  { key: 'APP-3', project: 'app', status: 'escalated', reason: 'max_attempts', base: RECENT },
  { key: 'APP-4', project: 'app', status: 'running', base: RECENT },
  { key: 'APP-5', project: 'app', status: 'done', base: OLD },
  { key: 'LIB-1', project: 'lib', status: 'done', base: RECENT },
];

/** Attempts: task, n, verdict, development run, judging run. */
const ATTEMPTS: [string, number, string, string, string | null][] = [
  ['APP-1', 1, 'rejected', 'r1', 'r2'],
  ['APP-1', 2, 'approved', 'r3', 'r4'],
  ['APP-2', 1, 'approved', 'r5', 'r6'],
  ['APP-3', 1, 'rejected', 'r8', 'r9'],
  ['APP-5', 1, 'approved', 'r11', null],
  ['LIB-1', 1, 'approved', 'r12', null],
];

/** Events: task, kind, when. Only approved, task_retried and human_message are interventions. */
const EVENTS: [string, string, number][] = [
  ['APP-1', 'approved', RECENT],
  ['APP-1', 'stage_changed', RECENT],
  ['APP-3', 'task_retried', RECENT],
  ['APP-3', 'human_message', RECENT],
  ['APP-3', 'human_message', RECENT],
  ['APP-5', 'approved', OLD],
];

async function writeHistory(store: Store): Promise<{ app: number; lib: number }> {
  const app = await store.upsertProject({
    name: 'app',
    rootPath: '/r/app',
    baseBranch: 'main',
    keyPrefix: 'APP',
  });
  const lib = await store.upsertProject({
    name: 'lib',
    rootPath: '/r/lib',
    baseBranch: 'main',
    keyPrefix: 'LIB',
  });
  const taskIds = new Map<string, number>();
  for (const t of TASKS) {
    const task = await store.createTask({ projectId: t.project === 'app' ? app.id : lib.id, title: t.key });
    expect(task.key).toBe(t.key);
    await store.updateTask(store.db, task.id, {
      status: t.status as TaskStatus,
      terminal_reason: (t.reason ?? null) as TerminalReason | null,
    });
    taskIds.set(t.key, task.id);
  }
  const runIds = new Map<string, number>();
  for (const r of RUNS) {
    const base = TASKS.find((t) => t.key === r.task)!.base;
    const [model, effort] = MODEL[r.variant ?? 'none']!;
    const row = await store.db
      .insertInto('agent_runs')
      .values({
        task_id: taskIds.get(r.task)!,
        agent: r.role,
        stage: r.role === 'developer' ? 'development' : 'review',
        adapter: r.adapter ?? 'scripted',
        model,
        effort,
        variant: r.variant,
        status: r.outcome ? 'finished' : 'running',
        outcome: r.outcome as RunOutcome | null,
        started_at: at(base + r.start * 1000),
        finished_at: r.seconds === null ? null : at(base + (r.start + r.seconds) * 1000),
        duration_ms: r.seconds === null ? null : r.seconds * 1000,
        input_tokens: r.input,
        output_tokens: r.output,
        cost_usd: r.cost,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    runIds.set(r.name, row.id);
  }
  for (const [key, n, verdict, dev, review] of ATTEMPTS)
    await store.recordAttempt(store.db, {
      task_id: taskIds.get(key)!,
      n,
      diff_hash: `${key}-${n}`,
      verdict: verdict as 'approved' | 'rejected',
      feedback: '',
      input_tokens: 0,
      output_tokens: 0,
      cost_usd: null,
      duration_ms: 0,
      reason: null,
      dev_run_id: runIds.get(dev)!,
      review_run_id: review ? runIds.get(review)! : null,
    });
  for (const [key, kind, when] of EVENTS)
    await store.db
      .insertInto('events')
      .values({ task_id: taskIds.get(key)!, kind, payload: '{}', created_at: at(when) })
      .execute();
  return { app: app.id, lib: lib.id };
}

interface Backend {
  dialect: Dialect;
  open(): Promise<Store>;
  close(): Promise<void>;
}

function sqlite(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'orch-stats-'));
  return {
    dialect: 'sqlite',
    async open() {
      const { db, dialect } = await openDatabase(join(dir, 'orch.db'));
      return new Store(db, dialect);
    },
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgres(): Backend {
  let database: TestDatabase | undefined;
  return {
    dialect: 'postgres',
    async open() {
      database = await createTestDatabase();
      const { db, dialect } = await openDatabase(database.url);
      return new Store(db, dialect);
    },
    async close() {
      await database?.drop();
    },
  };
}

describe.each([sqlite(), postgres()])('stats store on $dialect', (backend) => {
  let store: Store;
  let projects: { app: number; lib: number };
  beforeAll(async () => {
    store = await backend.open();
    projects = await writeHistory(store);
  });
  afterAll(async () => {
    await store?.close();
    await backend.close();
  });

  const report = async (f: StatsFilter) => {
    const rows = await store.stats.reportRows(f);
    const groups = assembleGroups(rows, f.by);
    return { groups, comparisons: compareVariants(groups, rows, f.by) };
  };
  const by = (...dims: StatsDimension[]) => dims;

  it('counts every figure per role and variant in the window, as counted by hand', async () => {
    const { groups } = await report({ sinceIso: SINCE, by: by('role', 'variant') });
    expect(groups.map((g) => g.key)).toEqual([
      { role: 'developer', variant: 'A' },
      { role: 'developer', variant: 'B' },
      { role: 'reviewer', variant: null },
    ]);
    const [a, b, reviewer] = groups;
    // developer A: r1 r3 r7 r8 (app) and r12 (lib); r11 is 60 days old.
    expect(a).toMatchObject({
      tasks: { total: 3, done: 2, escalated: 1, escalated_by_reason: { max_attempts: 1 } },
      runs: { total: 5, outcomes: { ok: 4, failed: 1 }, input_tokens: 410, output_tokens: 205 },
      // First attempts of APP-1 (rejected), APP-3 (rejected), LIB-1 (approved).
      first_pass: { reviewed: 3, approved: 1 },
      // APP-1 took 2 attempts, LIB-1 one.
      attempts_to_done: 1.5,
      // Durations 5 10 10 20 40: rank ⌈0.5·5⌉ = 3 and ⌈0.9·5⌉ = 5.
      duration_ms: { p50: 10_000, p90: 40_000 },
      interventions: { approvals: 1, retries: 1, messages: 2 },
    });
    expect(a!.runs.cost_usd).toBeCloseTo(0.8, 10);
    expect(a!.first_pass.rate).toBeCloseTo(1 / 3, 10);
    // Done tasks APP-1 ($0.20, 300 tokens) and LIB-1 ($0.50, 150 tokens).
    expect(a!.per_done_task.cost_usd).toBeCloseTo(0.35, 10);
    expect(a!.per_done_task.tokens).toBe(225);
    // s = 0.2121, t(0.975, 1) = 12.706: 0.35 ± 12.706 · 0.2121 / √2.
    expect(a!.per_done_task.cost_ci95![0]).toBeCloseTo(0.35 - 1.9059, 3);
    expect(a!.per_done_task.cost_ci95![1]).toBeCloseTo(0.35 + 1.9059, 3);

    expect(b).toMatchObject({
      tasks: { total: 2, done: 1, escalated: 0, escalated_by_reason: {} },
      runs: { total: 2, outcomes: { ok: 1, running: 1 }, input_tokens: 300, output_tokens: 100 },
      first_pass: { reviewed: 1, approved: 1, rate: 1 },
      attempts_to_done: 1,
      duration_ms: { p50: 30_000, p90: 30_000 },
      per_done_task: { cost_ci95: null, tokens: 400 },
      interventions: { approvals: 0, retries: 0, messages: 0 },
    });
    expect(b!.per_done_task.cost_usd).toBeCloseTo(0.3, 10);

    expect(reviewer).toMatchObject({
      tasks: { total: 3, done: 2, escalated: 1 },
      runs: { total: 4, outcomes: { ok: 4 }, input_tokens: 160, output_tokens: 40 },
      first_pass: { reviewed: 3, approved: 1 },
      attempts_to_done: 1.5,
      // Durations 2 2 4 6: ranks 2 and 4.
      duration_ms: { p50: 2_000, p90: 6_000 },
      per_done_task: { tokens: 75 },
      interventions: { approvals: 1, retries: 1, messages: 2 },
    });
    expect(reviewer!.per_done_task.cost_usd).toBeCloseTo(0.03, 10);
  });

  it('gives one group of everything when grouped by nothing', async () => {
    const { groups } = await report({ sinceIso: SINCE, by: [] });
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({
      key: {},
      tasks: { total: 5, done: 3, escalated: 1 },
      runs: { total: 11, outcomes: { ok: 9, failed: 1, running: 1 } },
      first_pass: { reviewed: 4, approved: 2 },
      // Ten finished runs: 2 2 4 5 6 10 10 20 30 40, ranks 5 and 9.
      duration_ms: { p50: 6_000, p90: 30_000 },
      interventions: { approvals: 1, retries: 1, messages: 2 },
    });
    expect(groups[0]!.attempts_to_done).toBeCloseTo(4 / 3, 10);
    // APP-1 $0.24, APP-2 $0.32, LIB-1 $0.50.
    expect(groups[0]!.per_done_task.cost_usd).toBeCloseTo(1.06 / 3, 10);
  });

  it('narrows to a project, and widens to all history without a window', async () => {
    const app = (await report({ projectId: projects.app, sinceIso: SINCE, by: by('role') })).groups;
    expect(app.map((g) => [g.key.role, g.runs.total, g.tasks.total, g.tasks.done])).toEqual([
      ['developer', 6, 4, 2],
      ['reviewer', 4, 3, 2],
    ]);
    const all = (await report({ by: by('role', 'variant') })).groups;
    const a = all.find((g) => g.key.variant === 'A')!;
    expect(a).toMatchObject({
      tasks: { total: 4, done: 3 },
      runs: { total: 6 },
      first_pass: { reviewed: 4, approved: 2 },
      interventions: { approvals: 2 },
    });
    expect(a.per_done_task.cost_usd).toBeCloseTo((0.2 + 0.5 + 1) / 3, 10);
  });

  it('groups by adapter, model and effort from the run stamps', async () => {
    const { groups } = await report({ sinceIso: SINCE, by: by('adapter', 'model', 'effort') });
    expect(groups.map((g) => [g.key.adapter, g.key.model, g.key.effort, g.runs.total])).toEqual([
      ['command', 'model-a', 'xhigh', 1],
      ['scripted', 'model-a', 'xhigh', 4],
      ['scripted', 'model-b', 'max', 2],
      ['scripted', 'model-r', 'high', 4],
    ]);
  });

  it('compares the variants of a role and says the difference is not yet significant', async () => {
    const { comparisons } = await report({ sinceIso: SINCE, by: by('role', 'variant') });
    expect(comparisons).toHaveLength(1);
    const c = comparisons[0]!;
    expect(c).toMatchObject({ key: { role: 'developer' }, a: 'A', b: 'B' });
    expect(c.approval.difference).toBeCloseTo(1 / 3 - 1, 10);
    expect(c.approval.significant).toBe(false);
    expect(c.approval.summary).toContain('not yet significant');
    // B has one done task: no interval for its cost yet.
    expect(c.cost_per_done_task).toMatchObject({ difference: null, significant: false });
    expect(c.cost_per_done_task.summary).toContain('not enough data');
  });

  it('counts finished runs into cumulative duration buckets for Prometheus', async () => {
    const rows = await store.stats.runDurationBuckets({ sinceIso: SINCE, by: by('role') }, [5, 15, 60]);
    const sorted = rows.sort((x, y) => String(x.key.role).localeCompare(String(y.key.role)));
    expect(sorted.map((r) => [r.key.role, r.cumulative, r.count, r.sum_s])).toEqual([
      ['developer', [1, 3, 6], 6, 115],
      ['reviewer', [3, 4, 4], 4, 14],
    ]);
  });

  it('stamps model, effort and variant on a run in one update', async () => {
    const id = (await store.db.selectFrom('agent_runs').select('id').orderBy('id').executeTakeFirstOrThrow())
      .id;
    await store.stats.stampLaunch(id, { model: 'm', effort: 'low', variant: 'C' });
    expect(await store.getRun(id)).toMatchObject({ model: 'm', effort: 'low', variant: 'C' });
    await store.stats.stampLaunch(id, { model: 'model-a', effort: 'xhigh', variant: 'A' });
  });
});
