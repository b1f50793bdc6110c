/**
 * The state machine, model-based: fast-check drives random sequences of
 * events (claims, every way a run or a gate can end, landings, crashes, lost
 * leases, a person's approve, retry and cancel) through the decision function
 * and its writer against the real store, on SQLite and on PostgreSQL, and
 * checks after every step what must always hold:
 *
 * - each task is in exactly one state, and its terminal statuses sit at their stages;
 * - no stage advanced twice (the task's version counts its stage changes, one event each);
 * - no job's tries exceed the caps (failures past `retry.max_retries`, interruptions past
 *   `retry.max_interruptions`, each at most once over, when the task escalates);
 * - at most one live job per task, and a task that can move has one;
 * - attempts are 1..n, and the ledger file agrees with the database;
 * - every escalation has its terminal packet.
 *
 * Then, whatever the run did, working every task on with random outcomes must bring each to
 * done, escalated, cancelled or a wait for a person within a bound set by its budget and caps.
 *
 * Bounded in `npm test`; `ORCH_CHAOS_FULL=1` (`npm run test:chaos`) runs many more sequences.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';
import { openContext, type OrchContext } from '../../src/runtime/context.ts';
import { Transitions, type JobEvent } from '../../src/runtime/transitions.ts';
import { STAGES, TASK_STATUSES } from '../../src/core/stages.ts';
import type { Job, Task } from '../../src/store/schema.ts';
import { ledgerDisagreement } from '../helpers/ledger-check.ts';
import { LEDGER_FILE } from '../../src/runtime/ledger.ts';

const FULL = process.env.ORCH_CHAOS_FULL === '1';
const RUNS = FULL ? 60 : 10;
const MAX_STEPS = FULL ? 120 : 50;
const TASKS = 3;

const CAPS = { maxRetries: 1, maxInterruptions: 1, maxAttempts: 2, maxLoops: 1 };
const CONFIG = {
  retry: { max_retries: CAPS.maxRetries, max_interruptions: CAPS.maxInterruptions, base_ms: 1, max_ms: 2 },
  budget: { max_attempts: CAPS.maxAttempts, max_loops: CAPS.maxLoops },
  pipeline: {
    architecture: { enabled: false },
    'deploy-staging': { kind: 'command', command: ['true'] },
    deploy: { approval: true, on_fail: 'deploy-staging' },
  },
};

/** One step a test may take on a task (index), with the random choices it needs. */
type Step =
  | { kind: 'claim'; task: number; resumeOk: boolean }
  | { kind: 'outcome'; task: number; outcome: Outcome }
  | { kind: 'approve' | 'retry' | 'cancel' | 'time'; task: number };

type Outcome =
  | 'run_failed'
  | 'over_budget'
  | 'shutdown'
  | 'reaped'
  | 'lease_lost'
  | 'worker_lost'
  | 'internal_error'
  | 'approved'
  | 'rejected_new'
  | 'rejected_same'
  | 'gate_failed'
  | 'stage_passed'
  | 'landed'
  | 'land_pending'
  | 'land_failed';

const OUTCOMES: Outcome[] = [
  'run_failed',
  'over_budget',
  'shutdown',
  'reaped',
  'lease_lost',
  'worker_lost',
  'internal_error',
  'approved',
  'rejected_new',
  'rejected_same',
  'gate_failed',
  'stage_passed',
  'landed',
  'land_pending',
  'land_failed',
];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('claim' as const),
      task: fc.nat(TASKS - 1),
      resumeOk: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('outcome' as const),
      task: fc.nat(TASKS - 1),
      outcome: fc.constantFrom(...OUTCOMES),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom('approve' as const, 'retry' as const, 'cancel' as const, 'time' as const),
      task: fc.nat(TASKS - 1),
    }),
  },
);

interface World {
  ctx: OrchContext;
  writer: Transitions;
  project: TempProject;
  /** The worker holding each task's running job (another "process" per claim). */
  holders: Map<number, string>;
  diffs: number;
}

const backends: {
  name: string;
  open(project: TempProject): Promise<{ ctx: OrchContext; done(): Promise<void> }>;
}[] = [
  {
    name: 'sqlite',
    async open(project) {
      const ctx = await openContext(project.dir, project.env);
      return { ctx, done: () => ctx.close() };
    },
  },
  {
    name: 'postgres',
    async open(project) {
      const db: TestDatabase = await createTestDatabase();
      const env = { ...project.env, ORCH_DATABASE_URL: db.url };
      const init = project.orch(['init'], { env: { ORCH_DATABASE_URL: db.url } });
      if (init.code !== 0) throw new Error(init.stderr);
      const ctx = await openContext(project.dir, env);
      return {
        ctx,
        done: async () => {
          await ctx.close();
          await db.drop();
        },
      };
    },
  },
];

describe.each(backends)('the state machine, model-based, on $name', (backend) => {
  let project: TempProject;
  let opened: Awaited<ReturnType<(typeof backend)['open']>>;
  beforeAll(async () => {
    project = makeProject({ config: CONFIG });
    opened = await backend.open(project);
  });
  afterAll(async () => {
    await opened?.done();
    project?.cleanup();
  });

  it(
    'random sequences of events keep every invariant, and every task ends within its bound',
    async () => {
      const seen = new Set<string>();
      await fc.assert(
        fc.asyncProperty(
          fc.array(stepArb, { minLength: 5, maxLength: MAX_STEPS }),
          fc.integer(),
          async (steps, seed) => {
            const world: World = {
              ctx: opened.ctx,
              writer: new Transitions({ ctx: opened.ctx, log: { info: () => {}, warn: () => {} } }),
              project,
              holders: new Map(),
              diffs: 0,
            };
            const project_ = (await world.ctx.store.listProjects())[0]!;
            const tasks: Task[] = [];
            for (let i = 0; i < TASKS; i += 1)
              tasks.push(
                await world.ctx.store.createTask({ projectId: project_.id, title: `prop ${seed} ${i}` }),
              );
            for (const step of steps) {
              await apply(world, tasks[step.task]!, step);
              await checkInvariants(world, tasks);
            }
            // Worked on with random outcomes (a person only approves), every task must settle.
            const rng = fc.sample(
              fc.array(fc.constantFrom(...OUTCOMES.filter((o) => o !== 'land_pending')), {
                minLength: 4000,
                maxLength: 4000,
              }),
              { seed, numRuns: 1 },
            )[0]!;
            let i = 0;
            const bound = boundOf();
            for (let round = 0; round < bound; round += 1) {
              const open = [];
              for (const t of tasks) if (!(await settled(world, t))) open.push(t);
              if (!open.length) break;
              for (const t of open) {
                const fresh = await world.ctx.store.getTask(t.id);
                if (fresh.status === 'waiting' && !(await world.ctx.store.liveJobOf(t.id))) {
                  await apply(world, t, { kind: 'approve', task: 0 });
                } else {
                  await apply(world, t, { kind: 'time', task: 0 });
                  await apply(world, t, { kind: 'claim', task: 0, resumeOk: false });
                  // The first task goes on the happy path from here (every step passes): it must end done.
                  const outcome =
                    t.id === tasks[0]!.id ? await happyOutcome(world, t) : rng[i++ % rng.length]!;
                  await apply(world, t, { kind: 'outcome', task: 0, outcome });
                }
                await checkInvariants(world, tasks);
              }
            }
            for (const t of tasks) {
              expect(await settled(world, t), `${t.key} did not settle within ${bound} rounds`).toBe(true);
              const end = await world.ctx.store.getTask(t.id);
              seen.add(end.status === 'escalated' ? `escalated:${end.terminal_reason}` : end.status);
            }
          },
        ),
        { numRuns: RUNS, endOnFailure: true },
      );
      // The sequences reached the ends that matter: a property that never got there proves nothing.
      expect(seen.has('done'), [...seen].join(', ')).toBe(true);
      expect(
        [...seen].some((s) => s.startsWith('escalated:')),
        [...seen].join(', '),
      ).toBe(true);
    },
    FULL ? 1_800_000 : 300_000,
  );
});

/**
 * Rounds within which any task must settle: every stage visit ends within its failures and
 * interruptions, every attempt and every loop is capped, a person's approval comes once a pass.
 */
function boundOf(): number {
  const perVisit = CAPS.maxRetries + 1 + (CAPS.maxInterruptions + 1) * 3 + 2;
  const visits = STAGES.length * (CAPS.maxAttempts + 2) * (CAPS.maxLoops + 2);
  return perVisit * visits;
}

/** What lets the task's current step pass: the landing lands, a review approves once, then its gates pass. */
async function happyOutcome(world: World, t: Task): Promise<Outcome> {
  const live = await world.ctx.store.liveJobOf(t.id);
  if (live?.step === 'land') return 'landed';
  const task = await world.ctx.store.getTask(t.id);
  const recorded = (await world.ctx.store.attemptsOfTask(t.id)).length;
  if (task.stage === 'review' && recorded < task.attempt) return 'approved';
  return 'stage_passed';
}

/** Done, escalated, cancelled, or waiting for a person (no job). */
async function settled(world: World, t: Task): Promise<boolean> {
  const task = await world.ctx.store.getTask(t.id);
  if (['done', 'escalated', 'cancelled'].includes(task.status)) return true;
  return false;
}

const attempt = (n: number, verdict: 'approved' | 'rejected', diffHash: string) => ({
  n,
  diffHash,
  verdict,
  feedback: verdict === 'rejected' ? 'no' : '',
  inputTokens: 1,
  outputTokens: 1,
  costUsd: 0.001,
  durationMs: 1,
  reason: null,
});

async function apply(world: World, t: Task, step: Step): Promise<void> {
  const { ctx, writer } = world;
  const task = await ctx.store.getTask(t.id);
  const live = await ctx.store.liveJobOf(t.id);
  switch (step.kind) {
    case 'time':
      // Time passes: delayed retries and polls come due.
      if (live?.status === 'queued')
        await ctx.store.db
          .updateTable('jobs')
          .set({ run_after: '2000-01-01T00:00:00.000Z' })
          .where('id', '=', live.id)
          .execute();
      return;
    case 'approve':
      await writer.approve(task.key, 'prop').catch(refusedOnly);
      return;
    case 'retry':
      await writer.retry(task.key, { maxAttempts: CAPS.maxAttempts + 1 }).catch(refusedOnly);
      return;
    case 'cancel':
      await writer.cancel(task.key).catch(refusedOnly);
      return;
    case 'claim': {
      if (live?.status !== 'queued' || Date.parse(live.run_after) > Date.now()) return;
      const owner = `prop-${Math.random().toString(36).slice(2, 8)}`;
      const [job] = await ctx.store.db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'running',
          lease_owner: owner,
          lease_expires_at: '2999-01-01T00:00:00.000Z',
          attempts: eb('attempts', '+', 1),
        }))
        .where('id', '=', live.id)
        .where('status', '=', 'queued')
        .returningAll()
        .execute();
      if (!job) return;
      world.holders.set(t.id, owner);
      const reviewDone =
        (await ctx.store.attemptsOfTask(t.id)).at(-1)?.verdict === 'approved' && step.resumeOk;
      await writer.onJob(
        job,
        { kind: 'claimed', lastRun: step.resumeOk ? { outcome: 'ok', here: true } : null, reviewDone },
        { owner },
      );
      return;
    }
    case 'outcome': {
      if (live?.status !== 'running') return;
      const owner = live.lease_owner;
      const recorded = (await ctx.store.attemptsOfTask(t.id)).length;
      const event = eventFor(world, live, step.outcome, recorded + 1);
      if (!event) return;
      if (step.outcome === 'worker_lost') {
        await writer.onJob(live, event, { owner, leaseExpiresAt: live.lease_expires_at });
        return;
      }
      const runs = event.kind === 'reviewed' ? { dev: null, review: null } : undefined;
      await writer.onJob(live, event, { owner }, runs ? { runs } : {});
      return;
    }
  }
}

/** The event an outcome makes for this job, or null when it cannot happen at the job's step. */
function eventFor(world: World, job: Job, outcome: Outcome, n: number): JobEvent | null {
  const land = job.step === 'land';
  switch (outcome) {
    case 'run_failed':
      return land ? null : { kind: 'run_failed', outcome: 'failed', runId: null, error: 'exit 1' };
    case 'over_budget':
      return land ? null : { kind: 'run_failed', outcome: 'over_budget', runId: 1, error: 'cost crossed' };
    case 'shutdown':
      return { kind: 'interrupted', cause: 'shutdown', runId: null };
    case 'reaped':
      return { kind: 'interrupted', cause: 'reaped', runId: null };
    case 'lease_lost':
      return { kind: 'interrupted', cause: 'lease_lost', runId: null };
    case 'worker_lost':
      return { kind: 'interrupted', cause: 'worker_lost', runId: null };
    case 'internal_error':
      return { kind: 'internal_error', message: 'boom' };
    case 'approved':
    case 'rejected_new':
    case 'rejected_same': {
      if (land || job.stage !== 'review') return null;
      const diff = outcome === 'rejected_same' ? 'same' : `d${(world.diffs += 1)}`;
      return {
        kind: 'reviewed',
        attempt: attempt(n, outcome === 'approved' ? 'approved' : 'rejected', diff),
      };
    }
    case 'gate_failed':
      return land
        ? null
        : { kind: 'gate_failed', gate: 'check_x', output: 'x', diffHash: `g${(world.diffs += 1)}` };
    case 'stage_passed':
      return land ? null : { kind: 'stage_passed', diffHash: `p${(world.diffs += 1)}` };
    case 'landed':
      return land ? { kind: 'landed' } : null;
    case 'land_pending':
      return land ? { kind: 'land_pending', detail: 'CI', pollMs: 1 } : null;
    case 'land_failed':
      return land ? { kind: 'land_failed', gate: 'check_ci_green', output: 'red', feedback: 'CI red' } : null;
  }
}

function refusedOnly(error: unknown): void {
  if ((error as { code?: string }).code !== 'invalid_state') throw error;
}

async function checkInvariants(world: World, tasks: readonly Task[]): Promise<void> {
  const { store } = world.ctx;
  const rt = await world.ctx.projectRuntime(tasks[0]!.project_id);
  for (const t of tasks) {
    const task = await store.getTask(t.id);
    expect(STAGES).toContain(task.stage);
    expect(TASK_STATUSES).toContain(task.status);
    if (task.status === 'done') expect(task.stage).toBe('done');
    if (task.stage === 'done') expect(task.status).toBe('done');
    if (task.status === 'cancelled' || task.stage === 'cancelled')
      expect([task.stage, task.status]).toEqual(['cancelled', 'cancelled']);
    // No stage advanced twice: one stage_changed event per version.
    const moves = (await store.reports.eventsAfter(0, 100_000, t.id)).filter(
      (e) => e.kind === 'stage_changed',
    );
    expect(moves.length).toBe(task.version);
    // One live job at most; a task that can move has one.
    const jobs = await store.db.selectFrom('jobs').selectAll().where('task_id', '=', t.id).execute();
    const live = jobs.filter((j) => j.status === 'queued' || j.status === 'running');
    expect(live.length).toBeLessThanOrEqual(1);
    if (task.status === 'queued' || task.status === 'running')
      expect(live.length, `${task.key} ${task.stage}/${task.status}`).toBe(1);
    if (['done', 'cancelled', 'escalated'].includes(task.status)) expect(live).toEqual([]);
    // Tries within the caps (one over at most, when the task escalates).
    for (const j of jobs) {
      expect(j.failures).toBeLessThanOrEqual(CAPS.maxRetries + 1);
      expect(Math.max(0, j.attempts - j.failures - 1)).toBeLessThanOrEqual(CAPS.maxInterruptions + 1);
    }
    // Attempts numbered 1..n; the ledger agrees with them.
    const attempts = await store.attemptsOfTask(t.id);
    expect(attempts.map((a) => a.n)).toEqual(attempts.map((_, i) => i + 1));
    const dir = join(rt.project.root_path, '.orch', 'artifacts', task.key);
    if (attempts.length) expect(ledgerDisagreement(join(dir, LEDGER_FILE), task, attempts)).toBeNull();
    if (task.status === 'escalated')
      expect(existsSync(join(dir, 'terminal-packet.md')), `${task.key} packet`).toBe(true);
  }
}
