/**
 * The pipeline state machine through the real CLI: every loop bounded, every
 * try counted, a cancel final, the reaper invariant over every timeout, spend
 * bounded within a run. Each test is a way a task could once run forever or
 * end in the wrong state.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  cleanupAll,
  packetPath,
  projectWithTask,
  runUntilIdle,
  showTask,
  startOrch,
  taskScript,
  verdict,
  withContext,
  write,
} from '../build-loop/loop-kit.ts';
import { waitFor } from '../helpers/kit.ts';

afterEach(cleanupAll);
// Whole pipelines through the real CLI: on a loaded two-core machine one can take a minute.
vi.setConfig({ testTimeout: 180_000 });

const usage = (cost: number) => ({ usage: { input_tokens: 1000, output_tokens: 100, cost_usd: cost } });

describe('the reaper invariant over every timeout source', () => {
  const base = {
    project: { name: 'sample', key_prefix: 'T', base_branch: 'main' },
    agents: { default: { adapter: 'scripted' } },
  };

  it('refuses a role timeout_s above the reaper at start: exit 2, naming the key, the file and the numbers', async () => {
    const { project, key } = projectWithTask('never runs', {});
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      stringify({ ...base, agents: { ...base.agents, developer: { timeout_s: 7200 } } }),
    );
    const r = project.orch(['run', '--until-idle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('orch.yaml');
    expect(r.stderr).toContain('agents.developer.timeout_s');
    expect(r.stderr).toContain('ORCH_REAPER_MAX_RUNNING_S (5400)');
    expect(r.stderr).toContain('(7200)');
    expect(r.stderr).toContain('7220');
    // A stage's own timeout counts too, and so does the environment's reaper.
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      stringify({ ...base, pipeline: { deploy: { kind: 'command', command: ['true'], timeout_s: 6000 } } }),
    );
    const s = project.orch(['run', '--until-idle']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('pipeline.deploy.timeout_s');
    expect(s.stderr).toContain('(6000)');
    // The environment's reaper is held to every timeout too, on a file that is fine on its own.
    writeFileSync(join(project.dir, 'orch.yaml'), stringify(base));
    const e = project.orch(['run', '--until-idle'], { env: { ORCH_REAPER_MAX_RUNNING_S: '3620' } });
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('ORCH_REAPER_MAX_RUNNING_S (3620)');
    // Nothing ran.
    expect(showTask(project, key).runs).toEqual([]);
  });

  it('refuses a reload that breaks the invariant: the running config is kept and the error shown', async () => {
    const { project, key } = projectWithTask('reload', {
      script: taskScript('reload', {
        developer: { default: [{ sleep_ms: 4000 }, write('src/a.txt', 'a\n')] },
      }),
    });
    const orch = startOrch(project);
    await withContext(project, (ctx) =>
      waitFor(
        async () => (await ctx.store.getRunningAgents()).some((a) => a.agent === 'developer'),
        30_000,
        'the developer',
      ),
    );
    const yaml = readFileSync(join(project.dir, 'orch.yaml'), 'utf8');
    writeFileSync(join(project.dir, 'orch.yaml'), `${yaml}\ntimeouts:\n  reaper_max_running_s: 100\n`);
    const status = await waitFor(
      async () => {
        const r = project.orch(['status', '--json']);
        const s = JSON.parse(r.stdout) as { config_errors: { error: string }[] };
        return s.config_errors.length ? s : null;
      },
      20_000,
      'the refused reload in orch status',
    );
    expect(status.config_errors[0]!.error).toMatch(/ORCH_REAPER_MAX_RUNNING_S \(100\)/);
    if (orch.child.exitCode === null) await new Promise<void>((r) => orch.child.once('exit', () => r()));
    // The task finished on the last good configuration.
    writeFileSync(join(project.dir, 'orch.yaml'), yaml);
    expect(showTask(project, key).status).toBe('done');
  });
});

describe('every try counts, and the count is bounded', () => {
  it('a poison agent that kills orch each time it runs ends escalated after a few restarts', async () => {
    const poison = join(process.cwd(), 'test', 'fixtures', 'agents', 'kill-parent.sh');
    const { project, key } = projectWithTask('poison', {
      config: {
        agents: { developer: { adapter: 'command', command: [poison] } },
        retry: { max_interruptions: 2, base_ms: 100, max_ms: 200 },
      },
    });
    const outputs: string[] = [];
    for (let restart = 0; restart < 8; restart += 1) {
      const r = project.orch(['run', '--until-idle'], { timeoutMs: 60_000 });
      outputs.push(r.stdout + r.stderr);
      if (r.code === 0) break;
    }
    const d = showTask(project, key);
    expect(d.status, outputs.join('\n---\n')).toBe('escalated');
    expect(d.terminal_reason).toBe('runs_interrupted');
    const devRuns = d.runs.filter((r) => r.role === 'developer');
    // Three tries (the cap of two interruptions, and the one past it found at the next start).
    expect(devRuns.length).toBe(3);
    expect(devRuns.every((r) => r.outcome === 'interrupted')).toBe(true);
    const packet = readFileSync(packetPath(project, key), 'utf8');
    expect(packet).toContain('`runs_interrupted`');
    for (const run of devRuns) expect(packet).toContain(`| ${run.id} | developer |`);
  });

  it('a poison agent that stops orch with SIGTERM each time is not run forever: shutdowns count past the cap', async () => {
    const poison = join(process.cwd(), 'test', 'fixtures', 'agents', 'term-parent.sh');
    const { project, key } = projectWithTask('polite poison', {
      config: {
        agents: { developer: { adapter: 'command', command: [poison] } },
        retry: { max_interruptions: 2, base_ms: 100, max_ms: 200 },
      },
    });
    const outputs: string[] = [];
    for (let restart = 0; restart < 10; restart += 1) {
      const r = project.orch(['run', '--until-idle'], { timeoutMs: 60_000 });
      outputs.push(r.stdout + r.stderr);
      if (showTask(project, key).status === 'escalated') break;
    }
    const d = showTask(project, key);
    expect(d.status, outputs.join('\n---\n')).toBe('escalated');
    expect(d.terminal_reason).toBe('runs_interrupted');
    // Two shutdowns given back (the cap), then three counted: the third is past the cap.
    expect(d.runs.filter((r) => r.role === 'developer').length).toBe(5);
  });

  it('a run older than the reaper’s limit is counted, and the task escalates past the cap', async () => {
    const { project, key } = projectWithTask('ancient', {
      config: { retry: { max_interruptions: 1 } },
      script: taskScript('ancient', {
        developer: { default: [{ sleep_ms: 20_000 }, write('src/a.txt', 'a\n')] },
      }),
    });
    const orch = project.spawnOrch(['run', '--until-idle'], { env: { ORCH_REAPER_INTERVAL_MS: '200' } });
    const ctx = await project.context();
    try {
      // Each developer run is made to look two hours old, as a clock jump or a stuck orch would.
      const backdated = new Set<number>();
      await waitFor(
        async () => {
          const t = await ctx.store.getTaskByKey(key);
          if (t.status === 'escalated') return t;
          for (const run of await ctx.store.runsOfTask(t.id)) {
            if (run.agent !== 'developer' || run.status !== 'running' || backdated.has(run.id)) continue;
            await ctx.store.db
              .updateTable('agent_runs')
              .set({ started_at: new Date(Date.now() - 7_200_000).toISOString() })
              .where('id', '=', run.id)
              .execute();
            backdated.add(run.id);
          }
          return null;
        },
        60_000,
        'the escalation',
      );
      const d = showTask(project, key);
      expect(d.terminal_reason).toBe('runs_interrupted');
      const devRuns = d.runs.filter((r) => r.role === 'developer');
      expect(devRuns.map((r) => r.outcome)).toEqual(['reaped', 'reaped']);
    } finally {
      orch.kill('SIGKILL');
      await ctx.close();
    }
  });
});

describe('every loop bounded', () => {
  const deployLoop = (budget: Record<string, unknown>) =>
    projectWithTask('loop', {
      config: {
        budget,
        retry: { max_retries: 0, base_ms: 100, max_ms: 200 },
        pipeline: {
          analysis: { enabled: false },
          architecture: { enabled: false },
          review: { enabled: false },
          testing: { enabled: false },
          deploy: { gates: [{ name: 'smoke', command: ['false'] }], on_fail: 'deploy-staging' },
        },
      },
      script: taskScript('loop', {
        developer: { default: [write('src/a.txt', 'a\n')] },
        deployer: { default: [usage(0.02)] },
      }),
    });

  it('an on_fail route back to an earlier stage is capped by budget.max_loops', () => {
    const { project, key } = deployLoop({ max_loops: 2 });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('escalated');
    expect(d.terminal_reason).toBe('gate_failure');
    expect(d.status_detail).toContain('budget.max_loops (2)');
    // Staging and deploy ran once, then twice more along the route: three each, no more.
    expect(d.runs.filter((r) => r.stage === 'deploy').length).toBe(3);
    expect(d.runs.filter((r) => r.stage === 'deploy-staging').length).toBe(3);
  });

  it('and by the USD budget, whatever max_loops allows', () => {
    const { project, key } = deployLoop({ max_loops: 50, max_usd: 0.05 });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.terminal_reason).toBe('budget_exhausted');
    const spent = d.runs.reduce((s, r) => s + (r.cost_usd ?? 0), 0);
    // Stopped before one more run could start: at most one run's cost over the budget.
    expect(spent).toBeLessThan(0.05 + 0.021);
  });

  it('the config check refuses a route to the same stage, naming why', () => {
    const { project } = projectWithTask('self', {});
    const yaml = readFileSync(join(project.dir, 'orch.yaml'), 'utf8');
    writeFileSync(
      join(project.dir, 'orch.yaml'),
      `${yaml}pipeline:\n  deploy:\n    gates: [{ name: smoke, command: ['false'] }]\n    on_fail: deploy\n`,
    );
    const r = project.orch(['run', '--until-idle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pipeline.deploy.on_fail');
    expect(r.stderr).toContain('nothing in between');
  });

  it('attempt numbers stay consecutive after late failures, and never exceed the budget', () => {
    const { project, key } = projectWithTask('late', {
      config: {
        budget: { max_attempts: 3 },
        project: { name: 'sample', key_prefix: 'T', base_branch: 'main', test_command: ['false'] },
      },
      script: taskScript('late', {
        developer: {
          attempts: {
            1: [write('src/a.txt', '1\n')],
            2: [write('src/a.txt', '2\n')],
            3: [write('src/a.txt', '3\n')],
          },
        },
        reviewer: { default: [verdict('approved', 'Fine.')] },
      }),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.terminal_reason).toBe('max_attempts');
    expect(d.attempts.map((a) => [a.n, a.verdict])).toEqual([
      [1, 'approved'],
      [2, 'approved'],
      [3, 'approved'],
    ]);
    // One developer run per attempt, numbered like them.
    expect(d.runs.filter((r) => r.role === 'developer').map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(d.status_detail).toContain('3 of 3 attempts used; the last was approved');
    const packet = readFileSync(packetPath(project, key), 'utf8');
    expect(packet).toContain('## Failed gates');
    expect(packet).toContain('check_ci_green');
  });
});

describe('cancel wins', () => {
  it('a cancel during a gate stays cancelled: nothing advances, nothing lands, the work is kept', async () => {
    const gate = join(process.cwd(), 'test', 'fixtures', 'agents', 'slow-gate.sh');
    const { project, key } = projectWithTask('cancel me', {
      config: {
        worktrees: { remove: 'never' },
        pipeline: {
          analysis: { enabled: false },
          architecture: { enabled: false },
          review: { enabled: false },
          testing: { enabled: false },
          deploy: { gates: [{ name: 'slow', command: [gate] }] },
        },
      },
      script: taskScript('cancel me', { developer: { default: [write('src/a.txt', 'a\n')] } }),
    });
    const before = project.git(['rev-parse', 'main']).trim();
    // Heartbeats 40 s apart: the cancel must reach the gate without waiting for one.
    const orch = startOrch(project, { ORCH_LEASE_TTL_MS: '120000' });
    await withContext(project, (ctx) =>
      waitFor(
        async () => (await ctx.store.getTaskByKey(key)).stage === 'deploy' && readMarker(project.dir),
        150_000,
        'the slow gate to start',
      ),
    );
    const cancelled = Date.now();
    expect(project.orch(['task', 'cancel', key]).code).toBe(0);
    if (orch.child.exitCode === null) await new Promise<void>((r) => orch.child.once('exit', () => r()));
    expect(Date.now() - cancelled, 'the gate was stopped by a heartbeat, not by the cancel').toBeLessThan(
      20_000,
    );
    const d = showTask(project, key);
    expect([d.stage, d.status]).toEqual(['cancelled', 'cancelled']);
    expect(project.git(['rev-parse', 'main']).trim()).toBe(before);
    await withContext(project, async (ctx) => {
      expect(await ctx.store.countJobs('queued')).toBe(0);
      expect(await ctx.store.countJobs('running')).toBe(0);
    });
  });
  it('a cancel once the landing moves the base is refused: the task ends done, not cancelled with its work merged', async () => {
    const { project, key } = projectWithTask('land me', {
      config: {
        pipeline: {
          analysis: { enabled: false },
          architecture: { enabled: false },
          review: { enabled: false },
          testing: { enabled: false },
        },
      },
      script: taskScript('land me', { developer: { default: [write('src/a.txt', 'a\n')] } }),
    });
    // The repository's own hook holds the base's update for a while, as a large checkout would.
    const marker = join(project.dir, '.landing-held');
    const hook = join(project.dir, '.git', 'hooks', 'reference-transaction');
    writeFileSync(
      hook,
      `#!/bin/sh\nin=$(cat)\ncase "$in" in *refs/heads/main*) [ "$1" = prepared ] && { touch '${marker}'; sleep 4; };; esac\nexit 0\n`,
      { mode: 0o755 },
    );
    const orch = startOrch(project);
    await waitFor(async () => existsSync(marker), 150_000, 'the landing to move the base');
    const r = project.orch(['task', 'cancel', key]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is landing');
    if (orch.child.exitCode === null) await new Promise<void>((r) => orch.child.once('exit', () => r()));
    const d = showTask(project, key);
    expect([d.stage, d.status]).toEqual(['done', 'done']);
    expect(project.git(['show', 'main:src/a.txt'])).toBe('a\n');
  });
});

describe('a broken orch.yaml never locks a person out', () => {
  it('task list, show, logs and cancel go on (with the defaults where they need a config, saying why); approve still refuses', () => {
    const { project, key } = projectWithTask('still mine', {});
    for (const broken of [
      stringify({ agents: { developer: { timeout_s: 9000 } } }),
      null, // an agent's doing: orch.yaml a symlink to /dev/zero
    ]) {
      const file = join(project.dir, 'orch.yaml');
      rmSync(file, { force: true });
      if (broken === null) symlinkSync('/dev/zero', file);
      else writeFileSync(file, broken);
      const list = project.orch(['task', 'list']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toContain(key);
      expect(project.orch(['task', 'show', key]).code).toBe(0);
      expect(project.orch(['logs', key]).code).toBe(0);
      // What queues work needs the project's real config.
      expect(project.orch(['task', 'approve', key]).code).toBe(2);
    }
    const cancel = project.orch(['task', 'cancel', key]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stderr).toContain('goes on with the built-in defaults');
    expect(showTask(project, key).status).toBe('cancelled');
  });
});

describe('spend bounded within a run', () => {
  it('a run whose streamed cost crosses the remaining budget is stopped, and the packet names it', () => {
    const { project, key } = projectWithTask('spendy', {
      config: {
        budget: { max_usd: 0.1 },
        pipeline: { analysis: { enabled: false }, architecture: { enabled: false } },
      },
      script: taskScript('spendy', {
        // Priced as claude-opus-4-8 ($5/M input): 1 000 tokens, then 40 000 ($0.20), then a long wait.
        developer: {
          default: [
            { usage: { input_tokens: 1000, output_tokens: 0 } },
            { sleep_ms: 300 },
            { usage: { input_tokens: 40_000, output_tokens: 0 } },
            { sleep_ms: 60_000 },
            write('src/a.txt', 'a\n'),
          ],
        },
      }),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.terminal_reason).toBe('budget_exhausted');
    const dev = d.runs.find((r) => r.role === 'developer')!;
    expect(dev.outcome).toBe('over_budget');
    // Stopped when it crossed, not after its minute of work.
    expect(Date.parse(dev.finished_at!) - Date.parse(dev.started_at!)).toBeLessThan(30_000);
    expect(d.status_detail).toContain(`run ${dev.id}`);
    expect(readFileSync(packetPath(project, key), 'utf8')).toContain('over_budget');
  });
});

/** The slow gate fixture leaves a marker in the worktree when it starts. */
function readMarker(dir: string): boolean {
  try {
    readFileSync(join(dir, '.orch', 'worktrees', 'sample', 'T-1', '.gate-started'));
    return true;
  } catch {
    return false;
  }
}
