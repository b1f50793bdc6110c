/**
 * Issue-2 acceptance: tasks go through the whole default pipeline with the
 * scripted agent, from the real CLI; the store survives a SIGKILL; bad input
 * gets a clear message and a non-zero exit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CLI,
  makeProject,
  ONLY_DEVELOPMENT,
  processesIn,
  waitFor,
  type TempProject,
} from '../helpers/kit.ts';
import { STAGE_ROLE } from '../../src/core/stages.ts';

const AGENT_STAGES = Object.keys(STAGE_ROLE);
let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

interface ShownTask {
  key: string;
  stage: string;
  status: string;
  terminal_reason: string | null;
  runs: {
    role: string;
    stage: string;
    exit_code: number | null;
    outcome: string | null;
    model: string | null;
    effort: string | null;
    input_tokens: number | null;
    output_tokens: number | null;
    cost_usd: number | null;
    started_at: string | null;
    finished_at: string | null;
  }[];
  attempts: { n: number; diff_hash: string; verdict: string }[];
}

const show = (p: TempProject, key: string): ShownTask => {
  const r = p.orch(['task', 'show', key, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShownTask;
};

describe('pipeline end to end', () => {
  it('runs three tasks through every stage and lands each change on main', async () => {
    project = makeProject();
    const keys = ['Add parser', 'Add printer', 'Add docs'].map((title) => {
      const r = project!.orch(['task', 'add', title, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { key: string }).key;
    });
    expect(keys).toEqual(['T-1', 'T-2', 'T-3']);

    const run = project.orch(['run', '--until-idle']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('T-1  ✔ done');

    for (const key of keys) {
      const t = show(project, key);
      expect(t).toMatchObject({ stage: 'done', status: 'done', terminal_reason: null });
      // Each agent stage has exactly one run, clean, stamped and costed.
      expect(t.runs.map((r) => r.stage)).toEqual(AGENT_STAGES);
      for (const r of t.runs) {
        expect(r.exit_code).toBe(0);
        expect(r.outcome).toBe('ok');
        expect(r.model).toBe('claude-opus-4-8');
        expect(r.effort).toBe(r.role === 'developer' ? 'xhigh' : 'high');
        expect(r.input_tokens).toBeGreaterThan(0);
        expect(r.output_tokens).toBeGreaterThan(0);
        expect(r.cost_usd).toBeGreaterThan(0);
        expect(r.started_at && r.finished_at && r.finished_at >= r.started_at).toBeTruthy();
      }
      expect(t.attempts).toHaveLength(1);
      expect(t.attempts[0]).toMatchObject({ n: 1, verdict: 'approved' });
      // The base branch holds the task's change.
      expect(project.git(['show', `main:changes/${key}.md`])).toContain(key);
    }
    expect(project.git(['status', '--porcelain'])).toBe('');
  });

  it('survives SIGKILL in the middle of a stage: every task ends done, no stage advanced twice, no orphan', async () => {
    project = makeProject({
      script: {
        tasks: [
          {
            match: { title: 'slow' },
            roles: {
              developer: {
                default: [{ sleep_ms: 1500 }, { write: { path: 'slow-{{key}}.txt', content: '{{key}}\n' } }],
              },
            },
          },
        ],
      },
    });
    for (const title of ['slow one', 'slow two', 'quick three'])
      expect(project.orch(['task', 'add', title]).code).toBe(0);
    const first = project.spawnOrch(['run']);
    const ctx = await project.context();
    try {
      // Kill while a developer agent is in flight.
      await waitFor(
        async () => (await ctx.store.getRunningAgents()).some((a) => a.agent === 'developer'),
        30_000,
        'a running developer',
      );
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));

      const again = project.orch(['run', '--until-idle']);
      expect(again.code, again.stderr).toBe(0);
      for (const task of await ctx.store.listTasks()) {
        expect(`${task.key} ${task.status} ${task.status_detail}`).toBe(`${task.key} done null`);
        const events = await ctx.store.db
          .selectFrom('events')
          .selectAll()
          .where('task_id', '=', task.id)
          .where('kind', '=', 'stage_changed')
          .execute();
        const moves = events
          .map((e) => JSON.parse(e.payload) as { from: string; to: string })
          .map((m) => `${m.from}>${m.to}`);
        expect(new Set(moves).size).toBe(moves.length);
        expect(moves.at(-1)).toBe('deploy>done');
      }
      const runs = await ctx.store.db.selectFrom('agent_runs').selectAll().execute();
      expect(runs.filter((r) => r.status === 'running')).toEqual([]);
      const interrupted = runs.filter((r) => r.outcome === 'interrupted');
      expect(interrupted.length).toBeGreaterThan(0);
      expect(
        interrupted.every((r) => r.agent === 'developer' || r.exit_code === -9 || r.exit_code === null),
      ).toBe(true);
      expect(processesIn(project.dir)).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('a killed run leaves no trace in the branch: its partial edits are discarded before the rerun', async () => {
    const script = (steps: unknown[]) => stringify({ defaults: { developer: steps } });
    project = makeProject({ script: {} });
    const scriptPath = join(project.dir, '.orch', 'script.yaml');
    writeFileSync(
      scriptPath,
      script([{ write: { path: 'partial.txt', content: 'half done\n' } }, { sleep_ms: 30000 }]),
    );
    expect(project.orch(['task', 'add', 'interrupted work']).code).toBe(0);
    const first = project.spawnOrch(['run']);
    const ctx = await project.context();
    try {
      await waitFor(
        () => existsSync(join(project!.dir, '.orch', 'worktrees', 'sample', 'T-1', 'partial.txt')),
        30_000,
        'the partial edit',
      );
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      writeFileSync(scriptPath, script([{ write: { path: 'final.txt', content: 'done\n' } }]));
      const again = project.orch(['run', '--until-idle']);
      expect(again.code, again.stderr).toBe(0);
      expect((await ctx.store.getTaskByKey('T-1')).status).toBe('done');
      expect(project.git(['show', 'main:final.txt'])).toBe('done\n');
      expect(project.git(['ls-tree', '-r', '--name-only', 'main'])).not.toContain('partial.txt');
    } finally {
      await ctx.close();
    }
  });

  it('SIGTERM ends running agents, records them interrupted and requeues their jobs', async () => {
    project = makeProject({
      script: {
        tasks: [{ match: { title: 'long' }, roles: { analyst: { default: [{ sleep_ms: 30000 }] } } }],
      },
    });
    expect(project.orch(['task', 'add', 'long analysis']).code).toBe(0);
    const child = project.spawnOrch(['run']);
    const ctx = await project.context();
    try {
      await waitFor(
        async () => (await ctx.store.getRunningAgents()).find((a) => a.pid),
        30_000,
        'a running analyst',
      );
      child.kill('SIGTERM');
      const code = await new Promise((r) => child.once('exit', (c) => r(c)));
      expect(code).toBe(0);
      expect(processesIn(project.dir)).toEqual([]);
      const [run] = await ctx.store.db.selectFrom('agent_runs').selectAll().execute();
      expect(run).toMatchObject({ status: 'finished', outcome: 'interrupted' });
      const jobs = await ctx.store.db
        .selectFrom('jobs')
        .selectAll()
        .where('stage', '=', 'analysis')
        .execute();
      expect(jobs).toHaveLength(1);
      expect(jobs[0]).toMatchObject({ status: 'queued', attempts: 0 });
    } finally {
      await ctx.close();
    }
  });
});

describe('bad input', () => {
  it('a malformed orch.yaml is reported with file, line and key, exit 2, every problem at once', () => {
    project = makeProject();
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      'project:\n  name: sample\n  key_prefix: t-lower\nagents:\n  developer:\n    adapter: telepathy\nbudget:\n  max_attempts: -1\n  bogus: 1\n',
    );
    const r = project.orch(['task', 'add', 'x']);
    expect(r.code).toBe(2);
    const file = join(project.dir, 'orch.yaml');
    expect(r.stderr).toContain('4 problems');
    expect(r.stderr).toContain(`${file}:3:15  project.key_prefix`);
    expect(r.stderr).toContain(`${file}:6:14  agents.developer.adapter`);
    expect(r.stderr).toContain(`${file}:8:17  budget.max_attempts`);
    expect(r.stderr).toMatch(new RegExp(`${file}:9:3  budget.bogus: unknown key`));
  });

  it('a YAML syntax error names the line', () => {
    project = makeProject();
    writeFileSync(join(project.dir, 'orch.yaml'), 'project:\n  name: [unclosed\n');
    const r = project.orch(['run', '--until-idle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/orch\.yaml:\d+:\d+/);
    // A person's reads go on, saying where the file is wrong when they need it.
    expect(project.orch(['task', 'list']).code).toBe(0);
  });

  it('an unknown task key', () => {
    project = makeProject();
    const r = project.orch(['task', 'show', 'NOPE-9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no task with key "NOPE-9"');
  });

  it('a directory that is not a git repository', () => {
    project = makeProject();
    const plain = mkdtempSync(join(tmpdir(), 'orch-plain-'));
    const res = project.orch(['project', 'add', plain]);
    const init = spawnSync(process.execPath, [CLI, 'init'], {
      cwd: plain,
      encoding: 'utf8',
      env: { ...project.env, ORCH_HOME: '' },
    });
    rmSync(plain, { recursive: true, force: true });
    expect(init.status).toBe(1);
    expect(init.stderr).toContain('is not a git repository');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('is not a git repository');
  });

  it('a missing agent executable stops `orch run` before any work, naming the key', () => {
    project = makeProject({
      config: { agents: { developer: { adapter: 'command', command: ['no-such-agent-binary', '--x'] } } },
    });
    expect(project.orch(['task', 'add', 'x']).code).toBe(0);
    const r = project.orch(['run', '--until-idle']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('agents.developer.command[0]');
    expect(r.stderr).toContain('no-such-agent-binary');
    expect(existsSync(join(project.dir, '.orch', 'logs'))).toBe(false);
  });
});

describe('following and cancelling', () => {
  it('`orch logs -f` prints each run as it happens and exits when the task is done', async () => {
    project = makeProject({
      script: {
        defaults: {
          developer: [
            { message: 'dev says hello' },
            { sleep_ms: 800 },
            { write: { path: 'f.txt', content: 'f\n' } },
          ],
        },
      },
    });
    expect(project.orch(['task', 'add', 'follow me']).code).toBe(0);
    const runner = project.spawnOrch(['run', '--until-idle']);
    const follower = project.spawnOrch(['logs', 'T-1', '-f']);
    let out = '';
    follower.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = await Promise.all([
      new Promise((r) => follower.once('exit', r)),
      new Promise((r) => runner.once('exit', r)),
    ]);
    expect(code).toBe(0);
    for (const role of ['analyst', 'architect', 'developer', 'reviewer', 'tester', 'deployer'])
      expect(out).toContain(`${role} (`);
    expect(out).toContain('dev says hello');
    expect(out.indexOf('analyst (analysis)')).toBeLessThan(out.indexOf('developer (development)'));
  });

  /**
   * `orch run` works T-1 until its developer runs; then `cancel()` (the CLI's `task cancel`),
   * and the developer's run must end recorded `cancelled`, with no process left in the worktrees.
   */
  async function cancelRunningDeveloper(p: TempProject, cancel: () => void): Promise<void> {
    const runner = p.spawnOrch(['run']);
    const ctx = await p.context();
    try {
      const agent = await waitFor(
        async () => (await ctx.store.getRunningAgents()).find((a) => a.agent === 'developer' && a.pgid),
        30_000,
        'the developer',
      );
      cancel();
      await waitFor(
        async () => (await ctx.store.runsOfTask(1)).every((run) => run.status === 'finished'),
        30_000,
        'the run to be finalized',
      );
      expect((await ctx.store.runsOfTask(1)).find((run) => run.id === agent.run_id)?.outcome).toBe(
        'cancelled',
      );
      expect(processesIn(join(p.dir, '.orch', 'worktrees'))).toEqual([]);
      expect((await ctx.store.getTaskByKey('T-1')).stage).toBe('cancelled');
    } finally {
      runner.kill('SIGTERM');
      await new Promise((r) => runner.once('exit', r));
      await ctx.close();
    }
  }

  it('`orch task cancel` leaves a live worker to stop its agent, without waiting out the kill grace itself', async () => {
    project = makeProject({
      config: {
        agents: { default: { adapter: 'command', command: ['sh', '-c', "trap '' TERM; sleep 600 & wait"] } },
        pipeline: ONLY_DEVELOPMENT,
        timeouts: { agent_kill_grace_seconds: 8 },
      },
    });
    expect(project.orch(['task', 'add', 'stubborn']).code).toBe(0);
    const p = project;
    await cancelRunningDeveloper(p, () => {
      const started = Date.now();
      const r = p.orch(['task', 'cancel', 'T-1']);
      expect(r.code, r.stderr).toBe(0);
      // The agent ignores SIGTERM: ending it takes the 8 s grace, which is the worker's to wait.
      expect(Date.now() - started).toBeLessThan(6_000);
    });
  });

  it('`orch task cancel` stops the running agent at once and the task never advances', async () => {
    project = makeProject({ script: { defaults: { developer: [{ sleep_ms: 60000 }] } } });
    expect(project.orch(['task', 'add', 'cancel me']).code).toBe(0);
    const p = project;
    await cancelRunningDeveloper(p, () => {
      const r = p.orch(['task', 'cancel', 'T-1', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        stage: 'cancelled',
        status: 'cancelled',
        terminal_reason: 'cancelled',
      });
    });
  });
});
