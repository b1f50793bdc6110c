/**
 * Outcome analytics and A/B variants, end to end: a history made by real
 * pipeline runs of the scripted agent through the CLI (`orch run`, `orch task
 * approve`, `orch task retry`), with two developer variants; then `orch stats`
 * (text, JSON, CSV), `GET /api/stats` and `/metrics` are checked against
 * figures counted by hand here, from the rows of the runs, tasks, attempts
 * and events tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { createApp } from '../../src/http/app.ts';
import { assignVariant } from '../../src/core/variants.ts';
import type { GroupStats, StatsReport } from '../../src/core/stats.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import type { AgentRun, Attempt, OrchEvent, Task } from '../../src/store/schema.ts';

const VARIANTS = [
  { name: 'careful', model: 'model-careful', effort: 'max', weight: 1, script: 'scripts/careful.yaml' },
  { name: 'quick', model: 'model-quick', effort: 'xhigh', weight: 1, script: 'scripts/quick.yaml' },
];
const TITLES = [
  'plain one',
  'plain two',
  'plain three',
  'plain four',
  'tricky one',
  'tricky two',
  'hopeless one',
  'flaky one',
];

/** A developer script: its own cost per run; a flaky task's first run fails (a marker outside the worktree). */
const developerScript = (cost: number, markers: string) => ({
  tasks: [
    {
      match: { title: 'flaky' },
      roles: {
        developer: {
          default: [
            {
              run: [
                'sh',
                '-c',
                `mkdir -p ${markers} && if [ -e ${markers}/{{key}} ]; then exit 0; fi; touch ${markers}/{{key}}; exit 3`,
              ],
            },
            { append: { path: 'changes/{{key}}.md', content: '- attempt {{attempt}}\n' } },
            { usage: { cost_usd: cost } },
          ],
        },
      },
    },
  ],
  defaults: {
    developer: [
      { append: { path: 'changes/{{key}}.md', content: '- attempt {{attempt}}\n' } },
      { usage: { cost_usd: cost } },
    ],
  },
});

/** The reviewer rejects tricky tasks once and hopeless ones twice. */
const REVIEWER_SCRIPT = {
  tasks: [
    {
      match: { title: 'tricky' },
      roles: { reviewer: { attempts: { 1: [{ verdict: 'rejected', comments: 'Handle the edge case.' }] } } },
    },
    {
      match: { title: 'hopeless' },
      roles: {
        reviewer: {
          attempts: {
            1: [{ verdict: 'rejected', comments: 'No.' }],
            2: [{ verdict: 'rejected', comments: 'Still no.' }],
          },
        },
      },
    },
  ],
};

// ------------------------------------------------------------ counting by hand

interface Tables {
  runs: AgentRun[];
  tasks: Task[];
  attempts: Attempt[];
  events: OrchEvent[];
}

type Dim = 'role' | 'model' | 'effort' | 'variant';
const dimOf = (r: AgentRun, d: Dim): string | null => (d === 'role' ? r.agent : r[d]);
const groupOf = (r: AgentRun, by: Dim[]) => JSON.stringify(by.map((d) => dimOf(r, d)));

/** Nearest rank: the value at rank ⌈q·n⌉ of the sorted values. */
const rank = (sorted: number[], q: number) => sorted[Math.ceil(q * sorted.length) - 1] ?? null;

/** Every figure of every group, from the raw rows, the way docs/analytics.md defines it. */
function countByHand(t: Tables, by: Dim[]) {
  const groups = new Map<string, AgentRun[]>();
  for (const r of t.runs) groups.set(groupOf(r, by), [...(groups.get(groupOf(r, by)) ?? []), r]);
  const taskById = new Map(t.tasks.map((x) => [x.id, x]));
  const out = new Map<string, Record<string, unknown>>();
  for (const [id, runs] of groups) {
    const taskIds = [...new Set(runs.map((r) => r.task_id))];
    const tasks = taskIds.map((x) => taskById.get(x)!);
    const done = tasks.filter((x) => x.status === 'done');
    const escalated = tasks.filter((x) => x.status === 'escalated');
    const reasons: Record<string, number> = {};
    for (const x of escalated) reasons[x.terminal_reason!] = (reasons[x.terminal_reason!] ?? 0) + 1;
    const outcomes: Record<string, number> = {};
    for (const r of runs) outcomes[r.outcome ?? r.status] = (outcomes[r.outcome ?? r.status] ?? 0) + 1;
    const runIds = new Set(runs.map((r) => r.id));
    const first = t.attempts.filter(
      (a) => a.n === 1 && (runIds.has(a.dev_run_id ?? -1) || runIds.has(a.review_run_id ?? -1)),
    );
    const doneAttempts = done
      .map((x) => t.attempts.filter((a) => a.task_id === x.id).length)
      .filter((n) => n > 0);
    const costs = done.map((x) =>
      runs.filter((r) => r.task_id === x.id).reduce((s, r) => s + (r.cost_usd ?? 0), 0),
    );
    const tokensPerDone = done.map((x) =>
      runs
        .filter((r) => r.task_id === x.id)
        .reduce((s, r) => s + (r.input_tokens ?? 0) + (r.output_tokens ?? 0), 0),
    );
    const durations = runs
      .filter((r) => r.started_at && r.finished_at)
      .map((r) => Date.parse(r.finished_at!) - Date.parse(r.started_at!))
      .sort((a, b) => a - b);
    const events = t.events.filter((e) => e.task_id !== null && taskIds.includes(e.task_id));
    const kind = (k: string) => events.filter((e) => e.kind === k).length;
    out.set(id, {
      tasks: {
        total: tasks.length,
        done: done.length,
        escalated: escalated.length,
        escalated_by_reason: reasons,
      },
      runs: { total: runs.length, outcomes },
      first_pass: { reviewed: first.length, approved: first.filter((a) => a.verdict === 'approved').length },
      attempts_to_done: doneAttempts.length
        ? doneAttempts.reduce((s, n) => s + n, 0) / doneAttempts.length
        : null,
      cost_per_done: costs.length ? costs.reduce((s, c) => s + c, 0) / costs.length : null,
      tokens_per_done: tokensPerDone.length
        ? tokensPerDone.reduce((s, c) => s + c, 0) / tokensPerDone.length
        : null,
      duration_ms: { p50: rank(durations, 0.5), p90: rank(durations, 0.9) },
      interventions: {
        approvals: kind('approved'),
        retries: kind('task_retried'),
        messages: kind('human_message'),
      },
    });
  }
  return out;
}

/** A group of the report, in the shape of the hand count. */
const asCounted = (g: GroupStats) => ({
  tasks: g.tasks,
  runs: { total: g.runs.total, outcomes: g.runs.outcomes },
  first_pass: { reviewed: g.first_pass.reviewed, approved: g.first_pass.approved },
  attempts_to_done: g.attempts_to_done,
  cost_per_done: g.per_done_task.cost_usd,
  tokens_per_done: g.per_done_task.tokens,
  duration_ms: g.duration_ms,
  interventions: g.interventions,
});

/** Numbers rounded, so sums taken in another order compare equal. */
const rounded = (v: unknown): unknown =>
  typeof v === 'number'
    ? Math.round(v * 1e9) / 1e9
    : Array.isArray(v)
      ? v.map(rounded)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)]))
        : v;

function expectMatchesHandCount(report: StatsReport, t: Tables, by: Dim[]) {
  const counted = countByHand(t, by);
  expect(report.by).toEqual(by);
  expect(new Set(report.groups.map((g) => JSON.stringify(by.map((d) => g.key[d] ?? null))))).toEqual(
    new Set(counted.keys()),
  );
  for (const g of report.groups) {
    const id = JSON.stringify(by.map((d) => g.key[d] ?? null));
    expect(rounded(asCounted(g)), id).toEqual(rounded(counted.get(id)));
  }
}

// ------------------------------------------------------------------- the history

let project: TempProject;
let ctx: OrchContext;
let tables: Tables;
const markers = mkdtempSync(join(tmpdir(), 'orch-flaky-'));

async function readTables(): Promise<Tables> {
  const db = ctx.store.db;
  return {
    runs: await db.selectFrom('agent_runs').selectAll().orderBy('id').execute(),
    tasks: await db.selectFrom('tasks').selectAll().orderBy('id').execute(),
    attempts: await db.selectFrom('attempts').selectAll().orderBy('id').execute(),
    events: await db.selectFrom('events').selectAll().orderBy('id').execute(),
  };
}

beforeAll(async () => {
  project = makeProject({
    files: {
      'scripts/careful.yaml': stringify(developerScript(0.3, markers)),
      'scripts/quick.yaml': stringify(developerScript(0.1, markers)),
      'scripts/reviewer.yaml': stringify(REVIEWER_SCRIPT),
    },
    config: {
      agents: {
        default: { adapter: 'scripted', script: 'scripts/reviewer.yaml' },
        developer: { variants: VARIANTS },
      },
      budget: { max_attempts: 2 },
      pipeline: {
        analysis: { enabled: false },
        architecture: { enabled: false },
        testing: { enabled: false },
        'deploy-staging': { enabled: false },
        deploy: { approval: true },
      },
    },
  });
  for (const title of TITLES) expect(project.orch(['task', 'add', title]).code).toBe(0);
  ctx = await project.context();
  // Work, let a human approve each deploy and retry the hopeless task once, until nothing is left.
  let retried = false;
  for (let round = 0; round < 6; round += 1) {
    const run = project.orch(['run', '--until-idle']);
    expect(run.code, run.stderr).toBe(0);
    const tasks = await ctx.store.listTasks();
    for (const t of tasks.filter((x) => x.status === 'waiting'))
      expect(project.orch(['task', 'approve', t.key]).code).toBe(0);
    const hopeless = tasks.find((x) => x.title === 'hopeless one')!;
    if (hopeless.status === 'escalated' && !retried) {
      expect(project.orch(['task', 'retry', hopeless.key, '--max-attempts', '3']).code).toBe(0);
      retried = true;
    }
    if (tasks.every((x) => x.status === 'done')) break;
  }
  // A message from a person (`orch task say` refuses a task already done, so written as it
  // records one): counted as an intervention all the same.
  const tricky = await ctx.store.listTasks();
  await ctx.store.appendEvent(
    ctx.store.db,
    tricky.find((x) => x.title === 'tricky one')!.id,
    'human_message',
    {
      text: 'mind the edge case',
      by: 'tester',
    },
  );
  tables = await readTables();
}, 300_000);

afterAll(async () => {
  await ctx?.close();
  project?.cleanup();
  rmSync(markers, { recursive: true, force: true });
});

const statsJson = (args: string[]): StatsReport => {
  const r = project.orch(['stats', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatsReport;
};

describe('orch stats on a history of the scripted agent with two developer variants', () => {
  it('made the history it was asked for: every task done, both variants used, a retry keeping its variant', () => {
    expect(tables.tasks.map((t) => t.status)).toEqual(TITLES.map(() => 'done'));
    const dev = tables.runs.filter((r) => r.agent === 'developer');
    for (const t of tables.tasks) {
      const mine = dev.filter((r) => r.task_id === t.id);
      const expected = assignVariant(VARIANTS, t.key, 'developer')!;
      // Every developer run of a task, retries and reworks included, has the task's variant and its setup.
      expect(new Set(mine.map((r) => `${r.variant} ${r.model} ${r.effort}`))).toEqual(
        new Set([`${expected.name} ${expected.model} ${expected.effort}`]),
      );
    }
    expect(new Set(dev.map((r) => r.variant))).toEqual(new Set(['careful', 'quick']));
    // Other roles have no variants.
    expect(tables.runs.filter((r) => r.agent !== 'developer').every((r) => r.variant === null)).toBe(true);
    // The history has what the figures need: a failed run, rejections, an escalation later retried, approvals.
    expect(dev.some((r) => r.outcome === 'failed')).toBe(true);
    expect(tables.attempts.some((a) => a.n === 1 && a.verdict === 'rejected')).toBe(true);
    expect(tables.events.filter((e) => e.kind === 'escalated').length).toBe(1);
    expect(tables.events.filter((e) => e.kind === 'task_retried').length).toBe(1);
    expect(tables.events.filter((e) => e.kind === 'approved').length).toBeGreaterThanOrEqual(TITLES.length);
  });

  it('--by variant: both variants figures, as counted by hand from the tables', () => {
    const report = statsJson(['--by', 'variant']);
    expectMatchesHandCount(report, tables, ['variant']);
    const names = report.groups.map((g) => g.key.variant);
    expect(names).toEqual(['careful', 'quick', null]);
    // The variants cost what their scripts say per development run.
    const careful = report.groups[0]!;
    for (const v of ['careful', 'quick'])
      expect(
        new Set(tables.runs.filter((r) => r.variant === v && r.outcome === 'ok').map((r) => r.cost_usd)),
      ).toEqual(new Set([v === 'careful' ? 0.3 : 0.1]));
    // And they are compared. The keys fall so that quick got all three tasks the reviewer rejects
    // first: careful 4 of 4 approved first time, quick 1 of 4 — a difference even 4 tasks a side show.
    expect(TITLES.map((_, i) => assignVariant(VARIANTS, `T-${i + 1}`, 'developer')!.name).join(' ')).toBe(
      'quick careful careful careful quick quick quick careful',
    );
    expect(report.comparisons).toHaveLength(1);
    const c = report.comparisons[0]!;
    expect([c.a, c.b]).toEqual(['careful', 'quick']);
    expect([careful.first_pass.approved, careful.first_pass.reviewed]).toEqual([4, 4]);
    expect(c.approval.difference).toBeCloseTo(0.75, 10);
    expect(c.approval.ci95![0]).toBeGreaterThan(0);
    expect(c.approval).toMatchObject({ significant: true });
    expect(c.approval.summary).toContain('careful is approved first time more often (100% vs 25%');
    // Cost per done task: careful $0.30 a pass, quick $0.10 a pass but more passes: $0.30 (and a failed
    // run's few cents) against 0.10, 0.20, 0.20 and 0.30. Four tasks a side cannot tell those apart.
    expect(c.cost_per_done_task.difference).toBeGreaterThan(0);
    expect(c.cost_per_done_task.ci95![0]).toBeLessThan(0);
    expect(c.cost_per_done_task.significant).toBe(false);
    expect(c.cost_per_done_task.summary).toContain(
      'cost per done task: the difference is not yet significant',
    );
  });

  it('--by role,model,effort (the default): every figure as counted by hand', () => {
    const report = statsJson([]);
    expectMatchesHandCount(report, tables, ['role', 'model', 'effort']);
    expect(report.comparisons).toEqual([]);
    const roles = report.groups.map((g) => `${g.key.role} ${g.key.model} ${g.key.effort}`);
    expect(roles).toEqual(
      expect.arrayContaining([
        'developer model-careful max',
        'developer model-quick xhigh',
        'reviewer claude-opus-4-8 high',
      ]),
    );
  });

  it('--by role,variant, the same through GET /api/stats', async () => {
    const { app, pulse } = createApp(ctx, { webDir: null });
    try {
      const res = await app.request('/api/stats?by=role,variant&since=1d');
      expect(res.status).toBe(200);
      const report = (await res.json()) as StatsReport;
      expectMatchesHandCount(report, tables, ['role', 'variant']);
      expect(report.comparisons.map((c) => [c.key, c.a, c.b])).toEqual([
        [{ role: 'developer' }, 'careful', 'quick'],
      ]);
      // The CLI's JSON is the API's.
      const cli = statsJson(['--by', 'role,variant', '--since', '1d']);
      expect(rounded({ ...cli, since: null })).toEqual(rounded({ ...report, since: null }));
      const bad = await app.request('/api/stats?by=role,colour&since=soon');
      expect(bad.status).toBe(400);
      const body = (await bad.json()) as { error: { details: { path: string }[] } };
      expect(body.error.details.map((d) => d.path).sort()).toEqual(['query.by', 'query.since']);
      expect((await app.request('/api/stats?project=nope')).status).toBe(404);
    } finally {
      pulse.close();
    }
  });

  it('a window or a project that holds nothing gives no group', () => {
    const future = statsJson(['--since', '2999-01-01']);
    expect(future.groups).toEqual([]);
    expect(project.orch(['stats', '--since', '2999-01-01']).stdout).toContain('no runs');
    expect(statsJson(['--project', 'sample', '--by', '']).groups[0]!.tasks.total).toBe(TITLES.length);
  });

  it('prints a table, the comparison, and CSV with one row per group', () => {
    const text = project.orch(['stats', '--by', 'role,variant']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^ROLE +VARIANT +TASKS +DONE/m);
    expect(text.stdout).toMatch(/^developer +careful /m);
    expect(text.stdout).toMatch(/^developer +quick /m);
    expect(text.stdout).toContain('careful vs quick (role developer):');
    const csv = project.orch(['stats', '--by', 'variant', '--csv']);
    expect(csv.code, csv.stderr).toBe(0);
    const [header, ...rows] = csv.stdout.trimEnd().split('\r\n');
    const cols = header!.split(',');
    expect(cols.slice(0, 4)).toEqual(['variant', 'tasks', 'done', 'escalated']);
    const counted = countByHand(tables, ['variant']);
    for (const row of rows) {
      const cells = row.split(',');
      const id = JSON.stringify([cells[0] || null]);
      const hand = counted.get(id) as { tasks: { done: number }; runs: { total: number } };
      expect(Number(cells[cols.indexOf('done')]), id).toBe(hand.tasks.done);
      expect(Number(cells[cols.indexOf('runs')]), id).toBe(hand.runs.total);
    }
    expect(rows).toHaveLength(counted.size);
  });

  it('refuses bad options with exit code 2 and says which', () => {
    const by = project.orch(['stats', '--by', 'role,colour']);
    expect(by.code).toBe(2);
    expect(by.stderr).toContain('by "colour"');
    const since = project.orch(['stats', '--since', 'last tuesday']);
    expect(since.code).toBe(2);
    expect(since.stderr).toContain('since "last tuesday"');
    expect(project.orch(['stats', '--json', '--csv']).code).toBe(2);
  });

  it('exports the same figures to Prometheus, labelled by role, model, effort and variant', async () => {
    const { app, pulse } = createApp(ctx, { webDir: null });
    try {
      const text = await (await app.request('/metrics')).text();
      const sample = (name: string, labels: Record<string, string>) => {
        const want = Object.entries(labels)
          .map(([k, v]) => `${k}="${v}"`)
          .sort()
          .join(',');
        const line = text.split('\n').find((l) => {
          const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(l);
          return m?.[1] === name && m[2]!.split(',').sort().join(',') === want;
        });
        return line ? Number(line.split(' ').at(-1)) : undefined;
      };
      const counted = countByHand(tables, ['role', 'model', 'effort', 'variant']);
      for (const v of VARIANTS) {
        const labels = { role: 'developer', model: v.model, effort: v.effort, variant: v.name };
        const hand = counted.get(JSON.stringify(['developer', v.model, v.effort, v.name])) as {
          tasks: { done: number };
          runs: { outcomes: Record<string, number> };
          first_pass: { reviewed: number; approved: number };
          interventions: { approvals: number };
        };
        expect(sample('orch_outcome_tasks_done_total', labels)).toBe(hand.tasks.done);
        expect(sample('orch_outcome_runs_total', { ...labels, outcome: 'ok' })).toBe(hand.runs.outcomes.ok);
        expect(sample('orch_outcome_first_pass_total', { ...labels, verdict: 'approved' })).toBe(
          hand.first_pass.approved,
        );
        expect(sample('orch_outcome_interventions_total', { ...labels, kind: 'approvals' })).toBe(
          hand.interventions.approvals,
        );
        const devRuns = tables.runs.filter((r) => r.variant === v.name && r.finished_at);
        expect(sample('orch_outcome_run_duration_seconds_count', labels)).toBe(devRuns.length);
        expect(sample('orch_outcome_run_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(
          devRuns.length,
        );
      }
      const reviewer = { role: 'reviewer', model: 'claude-opus-4-8', effort: 'high', variant: '' };
      expect(sample('orch_outcome_tasks_done_total', reviewer)).toBe(TITLES.length);
    } finally {
      pulse.close();
    }
  });
});
