/**
 * Best-of-N development (`pipeline.development.candidates`) end to end: a real `orch run
 * --until-idle`, the scripted agent as every role, each candidate scripted on its own
 * (`ORCH_CANDIDATE`), and the outcome read back from the database, git, the prompts and the
 * ledger.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupAll,
  ledgerLines,
  loopState,
  projectWithTask,
  promptOf,
  runUntilIdle,
  showTask,
  withContext,
  write,
} from './loop-kit.ts';
import { DEVELOP_AND_REVIEW } from '../helpers/kit.ts';

afterEach(cleanupAll);

/** A development gate that fails when the change says "bad". */
const noBad = { name: 'no_bad', command: ['sh', '-c', '! grep -rq bad src'] };

const config = (candidates: number) => ({
  pipeline: {
    ...DEVELOP_AND_REVIEW,
    development: { candidates, gates: ['check_diff_nonempty', noBad] },
  },
});

const candidateScript = (reviewer: unknown[]) => ({
  tasks: [
    {
      match: { title: 'pick' },
      roles: {
        developer: {
          candidates: {
            1: [write('src/pick.js', 'export const pick = (xs) => xs[0];\n')],
            2: [write('src/pick.js', 'export const pick = bad;\n')],
            3: [write('src/pick.js', 'export const pick = (xs) => xs.at(0);\n')],
          },
        },
        reviewer: { default: reviewer },
      },
    },
  ],
});

describe('development candidates', () => {
  it('runs three candidates, one failing its gate, and lands the one the reviewer picked; the budget counts all three runs', async () => {
    const { project, key } = projectWithTask('pick helper', {
      config: config(3),
      script: candidateScript([
        // The scripted agent's verdict step names the candidate (a fenced json block in its result).
        { verdict: 'approved', chosen: 3, comments: '3 reads best' },
      ]),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('done');
    // The chosen candidate landed.
    expect(project.git(['show', 'main:src/pick.js'])).toBe('export const pick = (xs) => xs.at(0);\n');

    const state = await withContext(project, (ctx) => loopState(ctx, key));
    const dev = state.runs.filter((r) => r.agent === 'developer');
    expect(dev.map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'ok'],
      [1, 'ok'],
      [1, 'ok'],
    ]);
    // One attempt, approved, on candidate 3's run, paying for all three developer runs and the review.
    expect(state.attempts.map((a) => [a.n, a.verdict])).toEqual([[1, 'approved']]);
    const attempt = state.attempts[0]!;
    expect(attempt.dev_run_id).toBe(dev[2]!.id);
    const review = state.runs.filter((r) => r.agent === 'reviewer');
    const paid = [...dev, ...review].reduce((s, r) => s + (r.input_tokens ?? 0) + (r.output_tokens ?? 0), 0);
    expect(attempt.input_tokens + attempt.output_tokens).toBe(paid);
    const spend = await withContext(project, (ctx) => ctx.store.taskSpend(state.task.id));
    expect(spend.tokens).toBe(paid);

    // The reviewer saw the two passing candidates' diffs, labelled, and not the failing one's.
    const prompt = promptOf(project, key, { id: review[0]!.id, role: 'reviewer' });
    expect(prompt).toContain('### Candidate 1');
    expect(prompt).toContain('xs[0]');
    expect(prompt).toContain('### Candidate 3');
    expect(prompt).toContain('xs.at(0)');
    expect(prompt).not.toContain('### Candidate 2');

    // Every candidate is kept as a ref; no candidate worktree or branch is left.
    for (const n of [1, 2, 3]) {
      expect(project.git(['rev-parse', '--verify', `refs/orch/candidates/${key}/1/${n}`]).trim()).toMatch(
        /^[0-9a-f]{40}$/,
      );
      expect(project.git(['branch', '--list', `orch/${key}-c${n}`]).trim()).toBe('');
    }
    expect(project.git(['show', `refs/orch/candidates/${key}/1/2:src/pick.js`])).toContain('bad');
    const worktrees = project.git(['worktree', 'list', '--porcelain']);
    expect(worktrees).not.toMatch(/-c[123]\n/);
    expect(existsSync(join(project.dir, '.orch', 'worktrees'))).toBe(true);

    // The ledger shows the candidates of the attempt, which passed, and which was chosen.
    const line = JSON.parse(ledgerLines(project, key)[1]!) as {
      candidates: { n: number; result: string; gate: string | null; chosen: boolean }[];
    };
    expect(line.candidates.map((c) => [c.n, c.result, c.gate, c.chosen])).toEqual([
      [1, 'passed', null, false],
      [2, 'gate_failed', 'no_bad', false],
      [3, 'passed', null, true],
    ]);
  });

  it('takes an approval that names a failing candidate as a rejection that says why', async () => {
    const { project, key } = projectWithTask('pick helper', {
      config: { ...config(3), budget: { max_attempts: 1 } },
      script: candidateScript([{ result: '{"verdict": "approved", "chosen": 2, "comments": "2"}' }]),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('escalated');
    expect(d.attempts.map((a) => [a.n, a.verdict])).toEqual([[1, 'rejected']]);
    expect(d.attempts[0]!.feedback).toContain('"chosen" must be one of the passing candidates 1, 3, got 2');
    // Nothing was adopted: the task branch holds no candidate's change.
    expect(project.git(['ls-tree', '-r', '--name-only', `orch/${key}`])).not.toContain('src/pick.js');
    const packet = await withContext(project, async (ctx) => {
      const { terminalPacketText } = await import('../../src/runtime/packet.ts');
      const task = await ctx.store.getTaskByKey(key);
      return terminalPacketText(ctx, task, await ctx.projectRuntime(task.project_id));
    });
    expect(packet).toContain('## Candidates');
    expect(packet).toContain(`refs/orch/candidates/${key}/1/2`);
  });

  it('runs no further candidate once the runs so far spent the task budget', async () => {
    const costly = (path: string) => [write(path, 'export const x = 1;\n'), { usage: { cost_usd: 0.25 } }];
    const { project, key } = projectWithTask('pick helper', {
      config: { ...config(3), budget: { max_usd: 0.4 } },
      script: {
        tasks: [
          {
            match: { title: 'pick' },
            roles: {
              developer: {
                candidates: { 1: costly('src/a.js'), 2: costly('src/b.js'), 3: costly('src/c.js') },
              },
            },
          },
        ],
      },
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('escalated');
    expect(d.terminal_reason).toBe('budget_exhausted');
    const state = await withContext(project, (ctx) => loopState(ctx, key));
    // Two candidates spent $0.50 of the $0.40: the third never started.
    expect(state.runs.filter((r) => r.agent === 'developer')).toHaveLength(2);
  });
});
