/**
 * Issue 6: gates pass and fail as configured, failing gates route the task,
 * approvals wait for a human, command stages run, branches land by strategy.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEVELOP_AND_REVIEW, makeProject, type ProjectOptions, type TempProject } from '../helpers/kit.ts';

// Whole pipelines through the real CLI, some two in a row: on a loaded two-core machine, minutes.
vi.setConfig({ testTimeout: 180_000 });

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

interface Shown {
  stage: string;
  status: string;
  terminal_reason: string | null;
  status_detail: string | null;
  runs: { role: string; stage: string; adapter: string; outcome: string; log_path: string }[];
  attempts: { n: number; verdict: string; reason: string | null; feedback: string }[];
  gates: { name: string; stage: string; passed: boolean; output_tail: string }[];
}

function runTasks(
  opts: ProjectOptions,
  titles: string[],
  args: string[] = [],
): { p: TempProject; shown: Shown[]; stdout: string } {
  const p = makeProject(opts);
  project = p;
  for (const t of titles) expect(p.orch(['task', 'add', t]).code).toBe(0);
  const r = p.orch(['run', '--until-idle', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const shown = titles.map(
    (_, i) => JSON.parse(p.orch(['task', 'show', `T-${i + 1}`, '--json']).stdout) as Shown,
  );
  return { p, shown, stdout: r.stdout };
}

const gate = (s: Shown, name: string) => s.gates.filter((g) => g.name === name);
/**
 * The pipeline without analysis, architecture and testing, for the tests of the stages after
 * review: the stages before them are only more agent runs, tested by the clean task above.
 */
const REVIEW_THEN_DEPLOY = {
  analysis: { enabled: false },
  architecture: { enabled: false },
  testing: { enabled: false },
};
const write = (path: string, content: string) => ({ write: { path, content } });

describe('gates', () => {
  it('check_artifacts_present: an analysis without its documents escalates with gate_failure', () => {
    const { shown } = runTasks({ script: { defaults: { analyst: [{ message: 'nothing written' }] } } }, [
      'no docs',
    ]);
    const [t] = shown;
    expect(t).toMatchObject({ stage: 'analysis', status: 'escalated', terminal_reason: 'gate_failure' });
    const [g] = gate(t!, 'check_artifacts_present');
    expect(g).toMatchObject({ stage: 'analysis', passed: false });
    expect(g!.output_tail).toContain('docs/tasks/T-1/requirements.md');
    expect(t!.runs.map((r) => r.stage)).toEqual(['analysis']);
  });

  it('check_artifacts_present and the others pass on a clean task, and every result is stored', () => {
    const { shown } = runTasks({}, ['clean']);
    const [t] = shown;
    expect(t!.status).toBe('done');
    const names = t!.gates.map((g) => `${g.stage}:${g.name}:${g.passed}`);
    expect(names).toEqual([
      'analysis:check_artifacts_present:true',
      'architecture:check_artifacts_present:true',
      'development:check_diff_nonempty:true',
      'review:check_reviewer_verdict:true',
      'testing:check_ci_green:true',
      'deploy:check_merge_clean:true',
    ]);
  });

  it('check_diff_nonempty: a development that only touches task documents is sent back, counted as an attempt', () => {
    const { shown } = runTasks(
      {
        config: { pipeline: DEVELOP_AND_REVIEW },
        script: {
          defaults: {
            developer: [write('docs/tasks/{{key}}/notes-{{attempt}}.md', 'notes\n')],
          },
          tasks: [
            {
              match: { title: 'lazy' },
              roles: { developer: { attempts: { 2: [write('src/lazy.txt', 'real work\n')] } } },
            },
          ],
        },
      },
      ['lazy'],
    );
    const [t] = shown;
    expect(t!.status).toBe('done');
    expect(t!.attempts.map((a) => [a.n, a.verdict, a.reason])).toEqual([
      [1, 'rejected', 'check_diff_nonempty'],
      [2, 'approved', null],
    ]);
    expect(gate(t!, 'check_diff_nonempty').map((g) => g.passed)).toEqual([false, true]);
  });

  it('check_ci_green: failing tests send the task back to development with the output; the rework passes', () => {
    const { shown } = runTasks(
      {
        config: {
          project: {
            name: 'sample',
            key_prefix: 'T',
            base_branch: 'main',
            test_command: ['sh', '-c', 'test -f ok.txt || { echo "ok.txt is missing"; exit 1; }'],
          },
          // Development, review and testing: the stages the failing tests loop through.
          pipeline: { ...DEVELOP_AND_REVIEW, testing: {} },
        },
        script: {
          tasks: [
            {
              match: { title: 'ci' },
              roles: {
                developer: { attempts: { 1: [write('src/a.txt', 'a\n')], 2: [write('ok.txt', 'ok\n')] } },
              },
            },
          ],
        },
      },
      ['ci'],
    );
    const [t] = shown;
    expect(t!.status).toBe('done');
    expect(gate(t!, 'check_ci_green').map((g) => g.passed)).toEqual([false, true]);
    expect(gate(t!, 'check_ci_green')[0]!.output_tail).toContain('ok.txt is missing');
    // The failure after the approval is paid for by the next attempt: one developer run each,
    // numbered without a gap, and the second developer was shown the test output.
    expect(t!.attempts.map((a) => [a.n, a.verdict, a.reason])).toEqual([
      [1, 'approved', null],
      [2, 'approved', null],
    ]);
    const devRuns = t!.runs.filter((r) => r.role === 'developer');
    expect(devRuns).toHaveLength(2);
    expect(readFileSync(devRuns[1]!.log_path.replace(/\.log$/, '.prompt.md'), 'utf8')).toContain(
      'ok.txt is missing',
    );
  });

  it('check_reviewer_verdict: a rejection fails the gate, the approval passes it', () => {
    const { shown } = runTasks(
      {
        config: { pipeline: DEVELOP_AND_REVIEW },
        script: {
          tasks: [
            {
              match: { title: 'rev' },
              roles: {
                developer: { attempts: { 1: [write('src/r.txt', '1\n')], 2: [write('src/r.txt', '2\n')] } },
                reviewer: {
                  attempts: { 1: [{ verdict: 'rejected', comments: 'use 2' }], 2: [{ verdict: 'approved' }] },
                },
              },
            },
          ],
        },
      },
      ['rev'],
    );
    expect(gate(shown[0]!, 'check_reviewer_verdict').map((g) => g.passed)).toEqual([false, true]);
  });

  it('a command gate fails with its output and escalates by default; with the file present it passes', () => {
    const config = {
      pipeline: {
        ...REVIEW_THEN_DEPLOY,
        'deploy-staging': {
          gates: [
            {
              name: 'smoke',
              command: ['sh', '-c', 'grep -q ready smoke.txt || { echo not ready; exit 3; }'],
            },
          ],
        },
      },
    };
    const failing = runTasks({ config }, ['smoke']).shown[0]!;
    expect(failing).toMatchObject({
      stage: 'deploy-staging',
      status: 'escalated',
      terminal_reason: 'gate_failure',
    });
    expect(gate(failing, 'smoke')[0]).toMatchObject({ passed: false });
    expect(gate(failing, 'smoke')[0]!.output_tail).toContain('not ready');
    project!.cleanup();

    const passing = runTasks(
      { config, script: { defaults: { developer: [write('smoke.txt', 'ready\n')] } } },
      ['smoke'],
    ).shown[0]!;
    expect(passing.status).toBe('done');
    expect(gate(passing, 'smoke')[0]).toMatchObject({ passed: true });
  });
});

describe('human approval and command stages', () => {
  it('a stage with approval waits until `orch task approve`, then goes on', () => {
    const { p, shown } = runTasks(
      { config: { pipeline: { ...REVIEW_THEN_DEPLOY, deploy: { approval: true } } } },
      ['needs a human'],
    );
    expect(shown[0]).toMatchObject({ stage: 'deploy', status: 'waiting' });
    expect(shown[0]!.status_detail).toContain('orch task approve T-1');
    expect(shown[0]!.runs.some((r) => r.stage === 'deploy')).toBe(false);
    const early = p.orch(['task', 'approve', 'T-2']);
    expect(early.code).toBe(1);
    const ok = p.orch(['task', 'approve', 'T-1']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(p.orch(['task', 'approve', 'T-1']).code).toBe(1); // no longer waiting
    expect(p.orch(['run', '--until-idle']).code).toBe(0);
    const after = JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as Shown;
    expect(after.status).toBe('done');
    expect(gate(after, 'check_human_approval')[0]).toMatchObject({ stage: 'deploy', passed: true });
  });

  it('a human stage has no agent: it waits, and approval moves the task on', () => {
    const { p, shown } = runTasks(
      { config: { pipeline: { ...REVIEW_THEN_DEPLOY, 'deploy-staging': { kind: 'human' } } } },
      ['sign-off'],
    );
    expect(shown[0]).toMatchObject({ stage: 'deploy-staging', status: 'waiting' });
    expect(p.orch(['task', 'approve', 'T-1']).code).toBe(0);
    expect(p.orch(['run', '--until-idle']).code).toBe(0);
    const after = JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as Shown;
    expect(after.status).toBe('done');
    expect(after.runs.filter((r) => r.stage === 'deploy-staging')).toEqual([]);
  });

  it('a command stage runs its argv in the worktree, its output is the run log, its files land', () => {
    const { p, shown } = runTasks(
      {
        config: {
          pipeline: {
            ...REVIEW_THEN_DEPLOY,
            'deploy-staging': {
              kind: 'command',
              command: ['sh', '-c', 'echo "deploying $ORCH_TASK_KEY to $TARGET"; echo staged > staged.txt'],
              env: { TARGET: 'staging' },
              timeout_s: 30,
            },
          },
        },
      },
      ['ship it'],
    );
    const t = shown[0]!;
    expect(t.status).toBe('done');
    const run = t.runs.find((r) => r.stage === 'deploy-staging')!;
    expect(run).toMatchObject({ adapter: 'command-stage', outcome: 'ok' });
    expect(p.orch(['logs', 'T-1']).stdout).toContain('deploying T-1 to staging');
    expect(p.git(['show', 'main:staged.txt'])).toBe('staged\n');
  });
});

describe('landing', () => {
  const conflicting = (title: string, line: string) => ({
    match: { title },
    roles: {
      developer: {
        attempts: {
          1: [{ sleep_ms: 300 }, write('shared.txt', `${line}\n`)],
          2: [write('shared.txt', 'from alpha\nfrom beta\n')],
        },
      },
    },
  });

  it('two tasks editing the same line in parallel: one lands, the other is reworked onto the new base and lands', () => {
    const { p, shown } = runTasks(
      {
        config: { pipeline: DEVELOP_AND_REVIEW },
        files: { 'shared.txt': 'original\n' },
        script: { tasks: [conflicting('alpha', 'from alpha'), conflicting('beta', 'from beta')] },
      },
      ['alpha', 'beta'],
      ['-c', '2'],
    );
    expect(shown.map((t) => t.status)).toEqual(['done', 'done']);
    const reworked = shown.filter((t) => gate(t, 'check_merge_clean').some((g) => !g.passed));
    expect(reworked).toHaveLength(1);
    // The failed landing is paid for by the next attempt, whose developer sees the conflict.
    expect(reworked[0]!.attempts.map((a) => [a.n, a.verdict, a.reason])).toEqual([
      [1, 'approved', null],
      [2, 'approved', null],
    ]);
    const devRuns = reworked[0]!.runs.filter((r) => r.role === 'developer');
    expect(readFileSync(devRuns[1]!.log_path.replace(/\.log$/, '.prompt.md'), 'utf8')).toContain(
      'shared.txt',
    );
    expect(p.git(['show', 'main:shared.txt'])).toBe('from alpha\nfrom beta\n');
    expect(p.git(['status', '--porcelain'])).toBe('');
  });

  it('rebase keeps the base history linear; merge-commit gives it a merge commit', () => {
    const two = { script: { defaults: { developer: [write('src/{{key}}.txt', '{{key}}\n')] } } };
    const rebased = runTasks(
      { ...two, config: { merge: { strategy: 'rebase' }, pipeline: DEVELOP_AND_REVIEW } },
      ['one', 'two'],
      ['-c', '2'],
    );
    expect(rebased.shown.map((t) => t.status)).toEqual(['done', 'done']);
    expect(rebased.p.git(['rev-list', '--merges', 'main']).trim()).toBe('');
    rebased.p.cleanup();

    const merged = runTasks(
      { ...two, config: { merge: { strategy: 'merge-commit' }, pipeline: DEVELOP_AND_REVIEW } },
      ['one'],
      [],
    );
    expect(merged.shown[0]!.status).toBe('done');
    const [mergeCommit] = merged.p.git(['rev-list', '--merges', 'main']).trim().split('\n');
    expect(mergeCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(merged.p.git(['log', '-1', '--format=%s', 'main'])).toContain("Merge branch 'orch/T-1'");
  });

  it('a done task’s worktree is removed by default, and kept with worktrees.remove: never', () => {
    const removed = runTasks({ config: { pipeline: DEVELOP_AND_REVIEW } }, ['tidy']).p;
    expect(existsSync(join(removed.dir, '.orch', 'worktrees', 'sample', 'T-1'))).toBe(false);
    expect(removed.git(['branch', '--list', 'orch/T-1']).trim()).toBe('orch/T-1');
    removed.cleanup();
    const kept = runTasks({ config: { worktrees: { remove: 'never' }, pipeline: DEVELOP_AND_REVIEW } }, [
      'keep',
    ]).p;
    expect(existsSync(join(kept.dir, '.orch', 'worktrees', 'sample', 'T-1'))).toBe(true);
  });
});
