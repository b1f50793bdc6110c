/**
 * Seed ORCH-109 (shared/seeds/002): timeout budgets, the launch-time model
 * stamp, usage that never clobbers it, the reaper invariant, the tracker line
 * of a killed run, in-flight visibility, anti-salvage and the untouched
 * contracts. TC-01 … TC-12 keep the seed's ids and meaning; where the seed
 * faked processes, these run the real CLI, real agents and a real database.
 */
import type { JobStatus } from '../../src/store/schema.ts';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import {
  FIXTURES,
  groupAlive,
  makeProject,
  waitFor,
  type ProjectOptions,
  type TempProject,
} from '../helpers/kit.ts';
import { ProjectConfigSchema } from '../../src/config/project-config.ts';
import { effectiveConfig, type Env } from '../../src/config/settings.ts';
import {
  DEFAULT_TIMEOUTS,
  maxResolvedTimeoutS,
  reaperInvariantViolation,
  resolveTimeoutS,
  type TimeoutSettings,
} from '../../src/core/timeouts.ts';
import { mergeReportedModel, resolveEffort, resolveModel } from '../../src/core/model.ts';
import { classifyRun, mayAdvance, type ProcessFacts, type RunOutcome } from '../../src/core/run-outcome.ts';
import { ROLES, STAGE_TRANSITIONS, STAGES, isRole } from '../../src/core/stages.ts';
import { QG_CHECKS } from '../../src/core/gates.ts';
import { openDatabase } from '../../src/store/db.ts';
import { Store } from '../../src/store/store.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { renderTaskTracker } from '../../src/notify/tracker.ts';

const SELF_KILL = join(FIXTURES, 'agents', 'self-kill.sh');
const CLEAN_RESULT = fileURLToPath(new URL('./fixtures/clean-result.sh', import.meta.url));
const MODEL = 'claude-opus-4-8';

// ------------------------------------------------------------------ harness

const cleanups: (() => void | Promise<void>)[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  // An orch process still running after a test is a bug of that test: end it, then fail.
  const leftRunning = children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
  for (const child of leftRunning) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (leftRunning.length) throw new Error(`${leftRunning.length} orch process(es) were left running`);
});

/** A temporary project, removed after the test. */
function project(opts: ProjectOptions = {}): TempProject {
  const p = makeProject(opts);
  cleanups.push(() => p.cleanup());
  return p;
}

/** The project's store, opened from the test and closed after it. */
async function contextOf(p: TempProject): Promise<OrchContext> {
  const ctx = await p.context();
  cleanups.push(() => ctx.close());
  return ctx;
}

/** A fresh, migrated SQLite database in a temporary directory. */
async function freshStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'orch-109-db-'));
  const { db, dialect } = await openDatabase(join(dir, 'orch.db'));
  const store = new Store(db, dialect);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  return store;
}

/** Timeout settings as orch derives them from an empty orch.yaml and `env`. */
const timeoutsFrom = (env: Env): TimeoutSettings =>
  effectiveConfig(ProjectConfigSchema.parse({}), env).timeouts;

/** Resolves a role's timeout and collects the warnings it gives. */
function resolveWithWarnings(s: TimeoutSettings, role: string | null | undefined) {
  const warnings: string[] = [];
  const timeoutS = resolveTimeoutS(s, role, (m) => warnings.push(m));
  return { timeoutS, warnings };
}

function addTask(p: TempProject, title: string): string {
  const r = p.orch(['task', 'add', title, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { key: string }).key;
}

const runUntilIdle = (p: TempProject, env: Record<string, string> = {}) =>
  p.orch(['run', '--until-idle'], { timeoutMs: 45_000, env });

/** Resolves when the child exits, with its exit code. */
const exitOf = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((r) => child.once('exit', (code) => r(code)));

/** `orch run --until-idle` in the background, its output collected; ended after the test if still running. */
function startRun(p: TempProject) {
  const child = p.spawnOrch(['run', '--until-idle']);
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    child,
    stderr: () => stderr,
    /** Waits for `check` while orch runs; fails at once, with orch's output, if orch exits first. */
    async whileRunning<T>(check: () => T | Promise<T>, what: string): Promise<NonNullable<T>> {
      return waitFor(
        async () => {
          const v = await check();
          if (!v && (child.exitCode !== null || child.signalCode !== null))
            throw new Error(
              `orch exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${stdout}\n${stderr}`,
            );
          return v;
        },
        20_000,
        what,
      );
    },
  };
}

// ---------------------------------------------- TC-01 … TC-03: timeout ladder

it('TC-01 developer and reviewer resolve to their dedicated budgets', () => {
  for (const s of [DEFAULT_TIMEOUTS, timeoutsFrom({})]) {
    expect(resolveTimeoutS(s, 'developer')).toBe(3600);
    expect(resolveTimeoutS(s, 'reviewer')).toBe(3000);
  }
});

it('TC-01 the dedicated budgets are configurable through ORCH_AGENT_TIMEOUT_DEVELOPER_S and _REVIEWER_S', () => {
  const s = timeoutsFrom({ ORCH_AGENT_TIMEOUT_DEVELOPER_S: '4200', ORCH_AGENT_TIMEOUT_REVIEWER_S: '2400' });
  const dev = resolveWithWarnings(s, 'developer');
  const rev = resolveWithWarnings(s, 'reviewer');
  expect([dev.timeoutS, rev.timeoutS]).toEqual([4200, 2400]);
  expect([...dev.warnings, ...rev.warnings]).toEqual([]);
  // orch.yaml sets them too; the environment wins over the file.
  const fromFile = ProjectConfigSchema.parse({ timeouts: { agent_timeout_developer_s: 4000 } });
  expect(resolveTimeoutS(effectiveConfig(fromFile, {}).timeouts, 'developer')).toBe(4000);
  expect(
    resolveTimeoutS(
      effectiveConfig(fromFile, { ORCH_AGENT_TIMEOUT_DEVELOPER_S: '4300' }).timeouts,
      'developer',
    ),
  ).toBe(4300);
});

it('TC-01 ORCH_AGENT_TIMEOUT_OVERRIDES_JSON stays the highest priority for any role', () => {
  const s = timeoutsFrom({
    ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{"developer": 1234, "reviewer": 999, "analyst": 77}',
    ORCH_AGENT_TIMEOUT_DEVELOPER_S: '4200',
  });
  expect(resolveTimeoutS(s, 'developer')).toBe(1234);
  expect(resolveTimeoutS(s, 'reviewer')).toBe(999);
  expect(resolveTimeoutS(s, 'analyst')).toBe(77);
  // A role the map does not name keeps its own ladder.
  expect(resolveTimeoutS(s, 'tester')).toBe(1800);
});

it('TC-02 roles without a dedicated budget, an unknown role and no role get the global default', () => {
  const shipped = timeoutsFrom({});
  for (const role of ['analyst', 'architect', 'tester', 'deployer', 'unknown-role', null, undefined, '']) {
    expect(resolveWithWarnings(shipped, role)).toEqual({ timeoutS: 1800, warnings: [] });
  }
  // The global default is ORCH_AGENT_TIMEOUT_SECONDS; it does not lower a dedicated budget.
  const s = timeoutsFrom({ ORCH_AGENT_TIMEOUT_SECONDS: '900' });
  expect(resolveTimeoutS(s, 'analyst')).toBe(900);
  expect(resolveTimeoutS(s, 'unknown-role')).toBe(900);
  expect(resolveTimeoutS(s, null)).toBe(900);
  expect(resolveTimeoutS(s, 'developer')).toBe(3600);
});

it('TC-03 malformed ORCH_AGENT_TIMEOUT_OVERRIDES_JSON is ignored with a warning and never throws', () => {
  const s = timeoutsFrom({ ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{not-json' });
  const dev = resolveWithWarnings(s, 'developer');
  expect(dev.timeoutS).toBe(3600);
  expect(dev.warnings.join('\n')).toMatch(/ORCH_AGENT_TIMEOUT_OVERRIDES_JSON.*malformed/);
  expect(resolveWithWarnings(s, 'analyst').timeoutS).toBe(1800);
  // Valid JSON of the wrong shape is ignored the same way.
  for (const json of ['[1, 2]', 'null', '42']) {
    const r = resolveWithWarnings(timeoutsFrom({ ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: json }), 'reviewer');
    expect(r.timeoutS).toBe(3000);
    expect(r.warnings.length).toBeGreaterThan(0);
  }
  // A bad value inside the map falls through to the role's dedicated budget.
  const bad = resolveWithWarnings(
    timeoutsFrom({ ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{"developer": 0}' }),
    'developer',
  );
  expect(bad.timeoutS).toBe(3600);
  expect(bad.warnings.join('\n')).toContain('ORCH_AGENT_TIMEOUT_OVERRIDES_JSON[developer]');
});

it.each(['0', '-5', 'abc', '1.5'])(
  'TC-03 ORCH_AGENT_TIMEOUT_DEVELOPER_S=%s falls back to the global default with a warning',
  (bad) => {
    const shipped = resolveWithWarnings(timeoutsFrom({ ORCH_AGENT_TIMEOUT_DEVELOPER_S: bad }), 'developer');
    expect(shipped.timeoutS).toBe(1800);
    expect(shipped.warnings).toHaveLength(1);
    expect(shipped.warnings[0]).toContain('ORCH_AGENT_TIMEOUT_DEVELOPER_S');
    // "The global default" is the configured global, not a constant.
    const custom = resolveWithWarnings(
      timeoutsFrom({ ORCH_AGENT_TIMEOUT_DEVELOPER_S: bad, ORCH_AGENT_TIMEOUT_SECONDS: '1200' }),
      'developer',
    );
    expect(custom.timeoutS).toBe(1200);
    expect(custom.warnings[0]).toContain('1200');
    // The reviewer's budget is untouched by the developer's bad value.
    expect(resolveWithWarnings(timeoutsFrom({ ORCH_AGENT_TIMEOUT_DEVELOPER_S: bad }), 'reviewer')).toEqual({
      timeoutS: 3000,
      warnings: [],
    });
  },
);

it.each<[string, unknown]>([
  ['zero', 0],
  ['negative', -5],
  ['a string', 'abc'],
  ['NaN', Number.NaN],
])('TC-03 a raw reviewer budget that is %s falls back to the global default with a warning', (_n, bad) => {
  const r = resolveWithWarnings({ ...DEFAULT_TIMEOUTS, agentTimeoutReviewerS: bad }, 'reviewer');
  expect(r.timeoutS).toBe(1800);
  expect(r.warnings.join('\n')).toContain('ORCH_AGENT_TIMEOUT_REVIEWER_S');
});

// ------------------------------------------------ TC-04 / TC-05: launch stamp

/** Records, from inside the database, every update that first sets a run's model or effort. */
async function recordStamps(ctx: OrchContext): Promise<void> {
  await sql
    .raw(
      `CREATE TABLE stamp_log (run_id INTEGER, col TEXT, model TEXT, effort TEXT, pid INTEGER, input_tokens INTEGER, status TEXT)`,
    )
    .execute(ctx.store.db);
  for (const col of ['model', 'effort']) {
    await sql
      .raw(
        `CREATE TRIGGER log_${col}_stamp AFTER UPDATE OF ${col} ON agent_runs
         WHEN OLD.${col} IS NULL AND NEW.${col} IS NOT NULL
         BEGIN INSERT INTO stamp_log VALUES (NEW.id, '${col}', NEW.model, NEW.effort, NEW.pid, NEW.input_tokens, NEW.status); END`,
      )
      .execute(ctx.store.db);
  }
}

interface StampRow {
  run_id: number;
  col: string;
  model: string | null;
  effort: string | null;
  pid: number | null;
  input_tokens: number | null;
  status: string;
}

it('TC-04 every run is stamped at launch with the resolved model and effort, in one update', async () => {
  const p = project();
  const ctx = await contextOf(p);
  await recordStamps(ctx);
  const key = addTask(p, 'Stamp every run');
  const env = { ORCH_AGENT_EFFORT_ANALYST: 'low', ORCH_AGENT_EFFORT_DEVELOPER: 'medium' };
  const r = runUntilIdle(p, env);
  expect(r.code, r.stderr).toBe(0);

  const task = await ctx.store.getTaskByKey(key);
  expect(task.stage).toBe('done');
  const runs = await ctx.store.runsOfTask(task.id);
  expect(runs.map((run) => run.agent)).toEqual([
    'analyst',
    'architect',
    'developer',
    'reviewer',
    'tester',
    'deployer',
    'deployer',
  ]);
  // The resolver, fed the same config and environment as the run, is the one source of truth.
  const models = effectiveConfig(ProjectConfigSchema.parse({}), env).models;
  const expectedEffort: Record<string, string> = {
    analyst: 'low',
    architect: 'high',
    developer: 'xhigh', // asked for medium: the developer's floor wins
    reviewer: 'high',
    tester: 'high',
    deployer: 'high',
  };
  const stamps = (await sql
    .raw('SELECT * FROM stamp_log ORDER BY rowid')
    .execute(ctx.store.db)
    .then((q) => q.rows)) as StampRow[];
  for (const run of runs) {
    expect(isRole(run.agent)).toBe(true);
    expect(run.model).toBe(MODEL);
    expect(run.model).toBe(resolveModel(models, run.agent));
    expect(run.effort).toBe(expectedEffort[run.agent]);
    expect(run.effort).toBe(resolveEffort(models, run.agent));
    // One update set both (each trigger saw the other column already set), at launch:
    // before the process existed (no pid) and before any usage was recorded.
    const own = stamps.filter((s) => s.run_id === run.id);
    expect(own.map((s) => s.col).sort()).toEqual(['effort', 'model']);
    for (const s of own) {
      expect(s).toMatchObject({ model: run.model, effort: run.effort, pid: null, input_tokens: null });
      expect(s.status).toBe('running');
    }
  }
});

it('TC-05 a failing launch stamp is logged and never stops the launch', async () => {
  const p = project({
    // The developer works long enough to be looked at while in flight.
    script: {
      defaults: {
        developer: [
          { sleep_ms: 1500 },
          { append: { path: 'changes/{{key}}.md', content: '- attempt {{attempt}}\n' } },
          { result: 'changed' },
        ],
      },
    },
  });
  const ctx = await contextOf(p);
  // Only the launch stamp writes effort: fail exactly that update, from inside the database.
  await sql
    .raw(
      `CREATE TRIGGER stamp_fail BEFORE UPDATE OF effort ON agent_runs
       WHEN NEW.effort IS NOT NULL AND OLD.effort IS NULL
       BEGIN SELECT RAISE(ABORT, 'simulated stamp failure'); END`,
    )
    .execute(ctx.store.db);
  const key = addTask(p, 'Stamp fails');
  const orch = startRun(p);

  // In flight, the run is there with its process, but without a stamp.
  const task = await ctx.store.getTaskByKey(key);
  const inFlight = await orch.whileRunning(
    async () =>
      (await ctx.store.runsOfTask(task.id)).find(
        (run) => run.agent === 'developer' && run.status === 'running' && run.pid !== null,
      ),
    'the developer run in flight',
  );
  expect(inFlight.model).toBeNull();
  expect(inFlight.effort).toBeNull();

  expect(await exitOf(orch.child)).toBe(0);
  const done = await ctx.store.getTaskByKey(key);
  expect(done.stage).toBe('done');
  expect(done.status).toBe('done');
  const runs = await ctx.store.runsOfTask(task.id);
  expect(runs).toHaveLength(7);
  for (const run of runs) {
    expect(run.status).toBe('finished');
    expect(run.outcome).toBe('ok');
    expect(run.exit_code).toBe(0);
    expect(run.pid).not.toBeNull();
    expect(run.effort).toBeNull();
    // The agent's own usage report filled the blank model afterwards (TC-07's rule).
    expect(run.model).toBe(MODEL);
  }
  const warnings = orch
    .stderr()
    .split('\n')
    .filter((l) => l.includes('could not stamp model and effort'));
  expect(warnings).toHaveLength(runs.length);
  expect(warnings[0]).toContain('simulated stamp failure');
});

// ------------------------------------------- TC-06 / TC-07: usage vs. stamp

async function runWithModel(store: Store, model: string | null): Promise<number> {
  const row = await store.db
    .insertInto('agent_runs')
    .values({ task_id: 1, agent: 'developer', status: 'running', model, effort: 'xhigh' })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

const runRow = (store: Store, id: number) =>
  store.db
    .selectFrom('agent_runs')
    .select(['model', 'effort', 'input_tokens', 'output_tokens'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();

it('TC-06 recordUsage with no usage (a killed run) keeps the launch stamp', async () => {
  const store = await freshStore();
  for (const usage of [null, undefined]) {
    const id = await runWithModel(store, MODEL);
    await store.recordUsage(id, usage);
    expect(await runRow(store, id)).toEqual({
      model: MODEL,
      effort: 'xhigh',
      input_tokens: null,
      output_tokens: null,
    });
  }
});

it.each<[string, string | null | undefined]>([
  ['null', null],
  ['missing', undefined],
  ['empty', ''],
  ['blank', '   '],
])('TC-06 recordUsage whose model is %s records the tokens and keeps the launch stamp', async (_n, model) => {
  const store = await freshStore();
  const id = await runWithModel(store, MODEL);
  await store.recordUsage(id, { inputTokens: 10, outputTokens: 5, model });
  expect(await runRow(store, id)).toEqual({
    model: MODEL,
    effort: 'xhigh',
    input_tokens: 10,
    output_tokens: 5,
  });
});

it('TC-07 a reported non-empty model fills a blank stamp', async () => {
  const store = await freshStore();
  const id = await runWithModel(store, null);
  await store.recordUsage(id, { inputTokens: 1, outputTokens: 1, model: MODEL });
  expect((await runRow(store, id)).model).toBe(MODEL);
});

it('TC-07 a provider-prefixed model refines a bare stamp', async () => {
  const store = await freshStore();
  const id = await runWithModel(store, MODEL);
  await store.recordUsage(id, { inputTokens: 1, outputTokens: 1, model: 'tokenator/claude-opus-4-8' });
  expect(await runRow(store, id)).toMatchObject({ model: 'tokenator/claude-opus-4-8', effort: 'xhigh' });
  // The pure rule behind it, every case at once.
  expect(
    [
      [MODEL, null],
      [MODEL, ''],
      [null, MODEL],
      [MODEL, 'tokenator/claude-opus-4-8'],
      [null, null],
    ].map(([stamp, reported]) => mergeReportedModel(stamp ?? null, reported)),
  ).toEqual([MODEL, MODEL, MODEL, 'tokenator/claude-opus-4-8', null]);
});

// ------------------------------------------------- TC-08: reaper invariant

it('TC-08 the shipped defaults hold the reaper invariant: 5400 > 3600 + 20', () => {
  const s = timeoutsFrom({});
  expect(s).toEqual(DEFAULT_TIMEOUTS);
  const maxBudget = maxResolvedTimeoutS(s);
  expect([maxBudget, s.agentKillGraceSeconds, s.reaperMaxRunningS]).toEqual([3600, 20, 5400]);
  expect(s.reaperMaxRunningS).toBeGreaterThan(maxBudget + s.agentKillGraceSeconds);
  expect(reaperInvariantViolation(s)).toBeNull();
});

it('TC-08 the largest resolved timeout over all roles is the developer budget', () => {
  const s = timeoutsFrom({});
  const perRole = ROLES.map((role) => resolveTimeoutS(s, role));
  expect(Math.max(...perRole)).toBe(3600);
  expect(maxResolvedTimeoutS(s)).toBe(resolveTimeoutS(s, 'developer'));
  // An override that raises another role above it moves the bound with it.
  const raised = timeoutsFrom({ ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{"tester": 6000}' });
  expect(maxResolvedTimeoutS(raised)).toBe(6000);
  expect(reaperInvariantViolation(raised)).toMatch(/5400.*6000.*20.*6020/);
});

it.each<[string, Env, string[]]>([
  ['reaper equal to timeout + grace', { ORCH_REAPER_MAX_RUNNING_S: '3620' }, ['3620', '3600', '20']],
  [
    'a developer budget the reaper would cut',
    { ORCH_AGENT_TIMEOUT_DEVELOPER_S: '5400' },
    ['5400', '20', '5420'],
  ],
  ['a long kill grace', { ORCH_AGENT_KILL_GRACE_SECONDS: '1800' }, ['5400', '3600', '1800', '5400']],
])('TC-08 a breaking config is named with its numbers: %s', (_n, env, numbers) => {
  const problem = reaperInvariantViolation(timeoutsFrom(env));
  expect(problem).not.toBeNull();
  expect(problem).toContain('ORCH_REAPER_MAX_RUNNING_S');
  for (const n of numbers) expect(problem).toContain(n);
  // One second more and it holds.
  const s = timeoutsFrom(env);
  expect(
    reaperInvariantViolation({
      ...s,
      reaperMaxRunningS: maxResolvedTimeoutS(s) + s.agentKillGraceSeconds + 1,
    }),
  ).toBeNull();
});

it('TC-08 orch run refuses to start with a config that breaks the invariant', async () => {
  const p = project();
  const key = addTask(p, 'Never runs');
  // Every command checks the configuration first, so the breaking one is written after the task.
  appendFileSync(join(p.dir, 'orch.yaml'), 'timeouts:\n  reaper_max_running_s: 100\n');
  const r = runUntilIdle(p);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('ORCH_REAPER_MAX_RUNNING_S (100)');
  expect(r.stderr).toContain('(3600)');
  expect(r.stderr).toContain('(20)');
  expect(r.stderr).toContain('3620');
  // The environment is checked the same way, on a config that is fine on its own.
  const q = runUntilIdle(p, { ORCH_REAPER_MAX_RUNNING_S: '3620' });
  expect(q.code).toBe(2);
  expect(q.stderr).toContain('ORCH_REAPER_MAX_RUNNING_S (3620)');
  // Nothing was launched.
  const ctx = await contextOf(p);
  const task = await ctx.store.getTaskByKey(key);
  expect(task.stage).toBe('created');
  expect(await ctx.store.runsOfTask(task.id)).toEqual([]);
});

// ------------------------------------------- TC-09: tracker line, killed run

async function doneTaskWithRuns(
  store: Store,
  runs: { model: string | null; effort: string | null; exit: number; start: string; end: string }[],
) {
  const proj = await store.upsertProject({
    name: 'orchestrator',
    rootPath: '/nonexistent',
    baseBranch: 'main',
    keyPrefix: 'ORCH',
  });
  const created = await store.createTask({ projectId: proj.id, title: 't' });
  await store.db
    .updateTable('tasks')
    .set({ stage: 'done', status: 'done' })
    .where('id', '=', created.id)
    .execute();
  for (const r of runs) {
    await store.db
      .insertInto('agent_runs')
      .values({
        task_id: created.id,
        agent: 'developer',
        stage: 'development',
        status: 'finished',
        outcome: r.exit === 0 ? 'ok' : 'killed',
        started_at: r.start,
        finished_at: r.end,
        exit_code: r.exit,
        input_tokens: 10,
        output_tokens: 5,
        cost_usd: 0,
        model: r.model,
        effort: r.effort,
      })
      .execute();
  }
  return { task: await store.getTask(created.id), runs: await store.runsOfTask(created.id) };
}

const developmentLine = (text: string): string => {
  const line = text.split('\n').find((l) => l.startsWith('✅ Разработка'));
  if (!line) throw new Error(`no "✅ Разработка" line in:\n${text}`);
  return line;
};

it('TC-09 the development line shows the launch-stamped model · effort of a killed last run', async () => {
  const store = await freshStore();
  const input = await doneTaskWithRuns(store, [
    // A different model first, to prove the line takes the last run's values.
    {
      model: 'claude-sonnet-4-6',
      effort: 'high',
      exit: 0,
      start: '2026-06-14 09:00:00',
      end: '2026-06-14 09:20:00',
    },
    {
      model: 'tokenator/claude-opus-4-8',
      effort: 'xhigh',
      exit: -9,
      start: '2026-06-14 09:25:00',
      end: '2026-06-14 09:55:00',
    },
  ]);
  const line = developmentLine(renderTaskTracker(input, 'ru'));
  expect(line.trimEnd().endsWith('opus-4-8 · xhigh')).toBe(true);
  expect(line).not.toContain('sonnet');
  expect(line).not.toContain('tokenator');
});

it('TC-09 an unstamped killed last run drops the model suffix', async () => {
  const store = await freshStore();
  const input = await doneTaskWithRuns(store, [
    {
      model: 'tokenator/claude-opus-4-8',
      effort: 'xhigh',
      exit: 0,
      start: '2026-06-14 09:00:00',
      end: '2026-06-14 09:20:00',
    },
    { model: null, effort: null, exit: -9, start: '2026-06-14 09:25:00', end: '2026-06-14 09:55:00' },
  ]);
  const line = developmentLine(renderTaskTracker(input, 'ru'));
  expect(line).not.toContain('opus-4-8');
  expect(line).not.toContain('xhigh');
  // Duration and cost are still there.
  expect(line).toMatch(/^✅ Разработка — 50м 00с · \$0\.00$/);
});

// -------------------------------------------- TC-10: in-flight visibility

it('TC-10 getRunningAgents lists a running job with its launch-stamped model and effort', async () => {
  const store = await freshStore();
  const proj = await store.upsertProject({
    name: 'orchestrator',
    rootPath: '/nonexistent',
    baseBranch: 'main',
    keyPrefix: 'ORCH',
  });
  const task = await store.createTask({ projectId: proj.id, title: 't' });
  // A task has one live job: its first one makes way for the running one below.
  await store.tx((tx) => store.cancelJobsOfTask(tx, task.id));
  const addRunAndJob = async (status: JobStatus, model: string) => {
    const run = await store.db
      .insertInto('agent_runs')
      .values({
        task_id: task.id,
        agent: 'developer',
        stage: 'development',
        status: 'running',
        model,
        effort: 'xhigh',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const now = new Date().toISOString();
    await store.db
      .insertInto('jobs')
      .values({
        task_id: task.id,
        project_id: proj.id,
        agent: 'developer',
        repo: 'orchestrator',
        stage: 'development',
        status,
        run_id: run.id,
        attempts: 1,
        run_after: now,
        started_at: now,
        created_at: now,
      })
      .execute();
    return run.id;
  };
  const running = await addRunAndJob('running', MODEL);
  await addRunAndJob('done', 'claude-sonnet-4-6');

  const rows = await store.getRunningAgents();
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({
    run_id: running,
    task_key: task.key,
    agent: 'developer',
    model: MODEL,
    effort: 'xhigh',
  });
});

interface StatusJson {
  running_agents: { role: string; model: string | null; effort: string | null; pid: number | null }[];
}

it('TC-10 orch status --json shows the live developer with its model, effort and pid', async () => {
  const p = project({
    script: {
      defaults: {
        developer: [
          { sleep_ms: 3000 },
          { append: { path: 'CHANGES.md', content: '- change\n' } },
          { result: 'ok' },
        ],
      },
    },
  });
  addTask(p, 'Watch me work');
  const orch = startRun(p);

  const agent = await orch.whileRunning(() => {
    const r = p.orch(['status', '--json']);
    if (r.code !== 0) return null;
    return (JSON.parse(r.stdout) as StatusJson).running_agents.find(
      (a) => a.role === 'developer' && a.pid !== null,
    );
  }, 'a running developer in orch status');
  expect(agent).toMatchObject({ role: 'developer', model: MODEL, effort: 'xhigh' });
  expect(agent.pid).toBeGreaterThan(0);

  orch.child.kill('SIGTERM');
  expect(await exitOf(orch.child)).toBe(0);
  // The agent's process group went down with orch.
  expect(groupAlive(agent.pid!)).toBe(false);
});

// --------------------------------------------------- TC-11: anti-salvage

const facts = (f: Partial<ProcessFacts>): ProcessFacts => ({
  exitCode: 0,
  timedOut: false,
  stalled: false,
  canceled: false,
  endedAfterResult: false,
  spawnError: null,
  hasResult: true,
  resultOk: true,
  ...f,
});

it.each<[string, Partial<ProcessFacts>, RunOutcome]>([
  ['clean exit with a successful result', {}, 'ok'],
  ['killed by SIGKILL (-9)', { exitCode: -9, hasResult: false, resultOk: false }, 'killed'],
  ['killed after printing a successful result', { exitCode: -9 }, 'killed'],
  ['no exit code at all', { exitCode: null, hasResult: false }, 'killed'],
  ['timed out', { exitCode: -9, timedOut: true, hasResult: false }, 'timeout'],
  ['stalled', { exitCode: -15, stalled: true, hasResult: false }, 'stalled'],
  ['non-zero exit', { exitCode: 1 }, 'failed'],
  ['exit 0 without a result', { hasResult: false, resultOk: false }, 'no_result'],
  ['exit 0 with an error result', { resultOk: false }, 'error_result'],
  ['cancelled', { canceled: true, exitCode: -15 }, 'cancelled'],
  ['could not start', { spawnError: 'ENOENT', exitCode: null }, 'spawn_error'],
  ['ended by orch after its successful result', { endedAfterResult: true, exitCode: -15 }, 'ok'],
])('TC-11 run outcome: %s', (_n, f, outcome) => {
  const kind = classifyRun(facts(f));
  expect(kind).toBe(outcome);
  expect(mayAdvance(kind)).toBe(outcome === 'ok');
});

it('TC-11 nothing but ok may advance a stage', () => {
  const all: RunOutcome[] = [
    'ok',
    'error_result',
    'no_result',
    'failed',
    'killed',
    'timeout',
    'stalled',
    'cancelled',
    'spawn_error',
    'interrupted',
    'reaped',
  ];
  expect(all.filter(mayAdvance)).toEqual(['ok']);
});

/** A project whose `role` is a command agent running `command`, other roles scripted. */
function commandAgentProject(role: string, command: string): TempProject {
  return project({
    config: {
      agents: { default: { adapter: 'scripted' }, [role]: { adapter: 'command', command: [command] } },
      retry: { max_retries: 1, base_ms: 50, max_ms: 100 },
    },
  });
}

it('TC-11 a developer killed with SIGKILL never advances: retried, then escalated at development', async () => {
  const p = commandAgentProject('developer', SELF_KILL);
  const key = addTask(p, 'Developer dies');
  const r = runUntilIdle(p);
  expect(r.code, r.stderr).toBe(0);

  const ctx = await contextOf(p);
  const task = await ctx.store.getTaskByKey(key);
  expect(task).toMatchObject({ stage: 'development', status: 'escalated', terminal_reason: 'agent_failure' });
  const runs = await ctx.store.runsOfTask(task.id);
  const dev = runs.filter((run) => run.agent === 'developer');
  // The first failure was retried once (the cap), the second escalated.
  expect(dev).toHaveLength(2);
  for (const run of dev) {
    expect(run).toMatchObject({ exit_code: -9, outcome: 'killed', status: 'finished' });
    // The launch stamp survives the kill (the agent itself never named a model).
    expect(run).toMatchObject({ model: MODEL, effort: 'xhigh' });
  }
  expect(runs.some((run) => run.stage === 'review' || run.agent === 'reviewer')).toBe(false);
  const moves = await ctx.store.db
    .selectFrom('events')
    .select('payload')
    .where('task_id', '=', task.id)
    .where('kind', '=', 'stage_changed')
    .execute();
  expect(moves.map((m) => (JSON.parse(m.payload) as { to: string }).to)).toEqual([
    'analysis',
    'architecture',
    'development',
  ]);
  expect(await ctx.store.attemptsOfTask(task.id)).toEqual([]);
  expect(existsSync(join(p.dir, '.orch', 'artifacts', key, 'terminal-packet.md'))).toBe(true);
});

it('TC-11 a reviewer killed with SIGKILL never advances: the task stays at review', async () => {
  const p = commandAgentProject('reviewer', SELF_KILL);
  const key = addTask(p, 'Reviewer dies');
  const r = runUntilIdle(p);
  expect(r.code, r.stderr).toBe(0);

  const ctx = await contextOf(p);
  const task = await ctx.store.getTaskByKey(key);
  expect(task).toMatchObject({ stage: 'review', status: 'escalated', terminal_reason: 'agent_failure' });
  const runs = await ctx.store.runsOfTask(task.id);
  const review = runs.filter((run) => run.agent === 'reviewer');
  expect(review).toHaveLength(2);
  for (const run of review) expect(run).toMatchObject({ exit_code: -9, outcome: 'killed', stage: 'review' });
  expect(runs.some((run) => run.stage === 'testing')).toBe(false);
  // A killed review is no verdict: no attempt was recorded.
  expect(await ctx.store.attemptsOfTask(task.id)).toEqual([]);
});

it('TC-11 positive control: a clean exit of a command developer advances', async () => {
  const p = commandAgentProject('developer', CLEAN_RESULT);
  const key = addTask(p, 'Developer succeeds');
  const r = runUntilIdle(p);
  expect(r.code, r.stderr).toBe(0);

  const ctx = await contextOf(p);
  const task = await ctx.store.getTaskByKey(key);
  expect(task).toMatchObject({ stage: 'done', status: 'done', terminal_reason: null });
  const runs = await ctx.store.runsOfTask(task.id);
  const dev = runs.filter((run) => run.agent === 'developer');
  expect(dev).toHaveLength(1);
  expect(dev[0]).toMatchObject({ exit_code: 0, outcome: 'ok', input_tokens: 10, output_tokens: 5 });
  // Its usage named no model, so the launch stamp stayed (TC-06's rule, end to end).
  expect(dev[0]).toMatchObject({ model: MODEL, effort: 'xhigh' });
  expect(runs.some((run) => run.agent === 'reviewer' && run.outcome === 'ok')).toBe(true);
});

// --------------------------------------------------- TC-12: contracts

it('TC-12 the stage machine has exactly the ten seed stages', () => {
  const seed = [
    'created',
    'analysis',
    'architecture',
    'development',
    'review',
    'testing',
    'deploy-staging',
    'deploy',
    'done',
    'cancelled',
  ];
  expect(new Set(Object.keys(STAGE_TRANSITIONS))).toEqual(new Set(seed));
  expect(Object.keys(STAGE_TRANSITIONS)).toHaveLength(10);
  expect([...STAGES]).toEqual(seed);
  // Every edge stays inside the set.
  for (const targets of Object.values(STAGE_TRANSITIONS)) for (const t of targets) expect(seed).toContain(t);
});

it('TC-12 agent_runs has model and effort columns', async () => {
  const store = await freshStore();
  const cols = await sql<{ name: string }>`PRAGMA table_info(agent_runs)`.execute(store.db);
  const names = cols.rows.map((c) => c.name);
  expect(names).toContain('model');
  expect(names).toContain('effort');
});

it('TC-12 the quality-gate registry has check_ci_green and check_reviewer_verdict', () => {
  expect(Object.keys(QG_CHECKS)).toEqual(
    expect.arrayContaining(['check_ci_green', 'check_reviewer_verdict']),
  );
});
