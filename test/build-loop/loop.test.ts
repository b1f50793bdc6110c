/**
 * The build loop end to end: a real `orch run --until-idle` over a temporary
 * project, the scripted agent as every role, and the outcome read back
 * through `orch task show --json`, the prompt files, the ledger and the
 * terminal packet.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEVELOP_AND_REVIEW } from '../helpers/kit.ts';
import {
  cleanupAll,
  expectLoopConsistent,
  ledgerLines,
  packetPath,
  projectWithTask,
  promptOf,
  runUntilIdle,
  showTask,
  taskScript,
  verdict,
  write,
  type TaskDetail,
} from './loop-kit.ts';

afterEach(cleanupAll);

const devRuns = (d: TaskDetail) => d.runs.filter((r) => r.role === 'developer');
const devRunOf = (d: TaskDetail, n: number) => {
  const runs = devRuns(d).filter((r) => r.attempt === n && r.outcome === 'ok');
  expect(runs, `one clean developer run for attempt ${n}`).toHaveLength(1);
  return runs[0]!;
};

/** Scripted usage with no cost, so only the steps that set one spend the budget. */
const free = { usage: { cost_usd: 0 } };

describe('build loop', () => {
  it("carries the reviewer's comments into the next developer prompt", async () => {
    const comment = 'Rename frobnicate() to clamp() and cover negative input (ref 7f3a).';
    const { project, key } = projectWithTask('clamp helper', {
      // The loop under test: development and review.
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('clamp', {
        developer: {
          attempts: {
            1: [write('src/clamp.js', 'export const frobnicate = () => 0;\n')],
            2: [
              write('src/clamp.js', 'export const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));\n'),
            ],
          },
        },
        reviewer: {
          attempts: { 1: [verdict('rejected', comment)], 2: [verdict('approved', 'Good.')] },
        },
      }),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('done');
    expect(d.attempts.map((a) => [a.n, a.verdict, a.feedback])).toEqual([
      [1, 'rejected', comment],
      [2, 'approved', 'Good.'],
    ]);
    const first = promptOf(project, key, devRunOf(d, 1));
    const second = promptOf(project, key, devRunOf(d, 2));
    expect(first).toContain('development, attempt 1');
    expect(first).not.toContain('Feedback from the last review');
    expect(second).toContain('development, attempt 2');
    expect(second).toContain('Feedback from the last review');
    expect(second).toContain(comment);
    // The change landed on the base branch.
    expect(project.git(['show', 'main:src/clamp.js'])).toContain('export const clamp');
  });

  it('counts an unreadable review as a rejection and shows the next developer why', async () => {
    const { project, key } = projectWithTask('vague review', {
      // The loop under test: development and review.
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('vague', {
        developer: {
          attempts: { 1: [write('src/a.txt', 'one\n')], 2: [write('src/a.txt', 'two\n')] },
        },
        reviewer: {
          attempts: { 1: [{ result: 'looks fine to me' }], 2: [verdict('approved', 'ok')] },
        },
      }),
    });
    runUntilIdle(project);
    const d = showTask(project, key);
    expect(d.status).toBe('done');
    const [first] = d.attempts;
    expect(first).toMatchObject({ n: 1, verdict: 'rejected' });
    expect(first!.reason).toMatch(/no JSON object with a "verdict" field/);
    expect(first!.feedback).toMatch(/^The review could not be read/);
    const prompt = promptOf(project, key, devRunOf(d, 2));
    expect(prompt).toContain('The review could not be read (no JSON object with a "verdict" field');
    expect(prompt).toContain('treat it as a rejection');
    expect(d.attempts.map((a) => a.verdict)).toEqual(['rejected', 'approved']);
  });

  it('stops with no_progress when the developer produces the same diff twice', async () => {
    const same = write('src/a.txt', 'unchanged idea\n');
    const { project, key } = projectWithTask('stuck developer', {
      // The loop under test: development and review.
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('stuck', {
        developer: { attempts: { 1: [same], 2: [same], 3: [write('src/a.txt', 'never reached\n')] } },
        reviewer: { default: [verdict('rejected', 'Try a different approach.')] },
      }),
    });
    const out = runUntilIdle(project);
    expect(out).toContain('escalated: no_progress');
    const d = showTask(project, key);
    expect(d).toMatchObject({ status: 'escalated', terminal_reason: 'no_progress' });
    expect(d.status_detail).toMatch(/attempt 2 produced the same diff as attempt 1/);
    expect(d.attempts.map((a) => a.n)).toEqual([1, 2]);
    expect(d.attempts[1]!.diff_hash).toBe(d.attempts[0]!.diff_hash);
    expect(d.attempts[1]!.reason).toBe('no_progress');
    expect(devRuns(d).map((r) => r.attempt)).toEqual([1, 2]);
    expect(readFileSync(packetPath(project, key), 'utf8')).toContain('- **Reason:** `no_progress`');
    await expectLoopConsistent(project, key);
  });

  it('stops with design_rejected when the architect writes no decision record, before any development', async () => {
    const { project, key } = projectWithTask('undesigned feature', {
      script: taskScript('undesigned', {
        architect: { default: [{ message: 'I could not settle on a design.' }] },
        developer: { default: [write('src/a.txt', 'should never be written\n')] },
      }),
    });
    const out = runUntilIdle(project);
    expect(out).toContain('gate check_artifacts_present: FAILED');
    expect(out).toContain('escalated: design_rejected');
    const d = showTask(project, key);
    expect(d).toMatchObject({
      status: 'escalated',
      terminal_reason: 'design_rejected',
      stage: 'architecture',
    });
    expect(d.status_detail).toContain(`docs/tasks/${key}/adr.md`);
    expect(d.runs.map((r) => r.role)).toEqual(['analyst', 'architect']);
    expect(d.attempts).toEqual([]);
    expect(d.gates.filter((g) => g.stage === 'architecture')).toEqual([
      expect.objectContaining({ name: 'check_artifacts_present', passed: false }),
    ]);
    const packet = readFileSync(packetPath(project, key), 'utf8');
    expect(packet).toContain('- **Reason:** `design_rejected`');
    expect(packet).toContain('The design was rejected.');
    expect(packet).toContain('no attempt recorded');
  });

  it('stops with max_attempts, and `orch task retry --max-attempts 4` resumes at attempt 3 with the ledger kept', async () => {
    const comments = {
      1: 'Attempt one misses the overflow case.',
      2: 'Attempt two still truncates instead of rounding (ref 9c1e).',
    };
    const { project, key } = projectWithTask('retry me', {
      config: { budget: { max_attempts: 2 }, pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('retry', {
        developer: {
          attempts: {
            1: [write('src/impl.txt', 'v1\n')],
            2: [write('src/impl.txt', 'v2\n')],
            3: [write('src/impl.txt', 'v3\n')],
          },
        },
        reviewer: {
          attempts: {
            1: [verdict('rejected', comments[1])],
            2: [verdict('rejected', comments[2])],
            3: [verdict('approved', 'Finally right.')],
          },
        },
      }),
    });
    runUntilIdle(project);
    const stopped = showTask(project, key);
    expect(stopped).toMatchObject({ status: 'escalated', terminal_reason: 'max_attempts' });
    expect(stopped.status_detail).toBe('2 of 2 attempts used, all rejected');
    expect(stopped.attempts.map((a) => a.n)).toEqual([1, 2]);
    const ledgerBefore = ledgerLines(project, key);
    expect(ledgerBefore).toHaveLength(3);
    expect(readFileSync(packetPath(project, key), 'utf8')).toContain(
      `orch task retry ${key} --max-attempts 5`,
    );

    const retry = project.orch(['task', 'retry', key, '--max-attempts', '4', '--json']);
    expect(retry.code, retry.stderr).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ key, stage: 'development', status: 'queued' });

    const out = runUntilIdle(project);
    expect(out).toContain('developer started (development, attempt 3');
    expect(out).not.toMatch(/started \(development, attempt [12][,)]/);

    const d = showTask(project, key);
    expect(d.status).toBe('done');
    expect(d.terminal_reason).toBeNull();
    expect(d.attempts.map((a) => [a.n, a.verdict])).toEqual([
      [1, 'rejected'],
      [2, 'rejected'],
      [3, 'approved'],
    ]);
    // Attempts 1-2 are the rows recorded before the retry, untouched.
    expect(d.attempts.slice(0, 2)).toEqual(stopped.attempts);
    expect(devRuns(d).map((r) => r.attempt)).toEqual([1, 2, 3]);

    const ledgerAfter = ledgerLines(project, key);
    expect(ledgerAfter).toHaveLength(4);
    expect(ledgerAfter.slice(0, 3)).toEqual(ledgerBefore);
    expect(JSON.parse(ledgerAfter[3]!)).toMatchObject({ type: 'attempt', n: 3, verdict: 'approved' });

    // The resumed developer works on the latest review, not an older one.
    const prompt = promptOf(project, key, devRunOf(d, 3));
    expect(prompt).toContain('development, attempt 3');
    expect(prompt).toContain(comments[2]);
    expect(prompt).not.toContain(comments[1]);
    await expectLoopConsistent(project, key);
  });

  it('stops with budget_exhausted when the USD budget runs out during the loop, listing the attempt', async () => {
    const { project, key } = projectWithTask('costly review', {
      config: { budget: { max_usd: 0.0001 } },
      script: taskScript('costly', {
        analyst: {
          default: [
            write('docs/tasks/{{key}}/requirements.md', '# Requirements\n\nCheap.\n'),
            write('docs/tasks/{{key}}/test-plan.md', '# Test plan\n\nNone.\n'),
            free,
          ],
        },
        architect: {
          default: [write('docs/tasks/{{key}}/adr.md', '# ADR\n\nDo the simple thing.\n'), free],
        },
        developer: { default: [write('src/a.txt', 'first try\n'), free] },
        reviewer: {
          default: [{ usage: { cost_usd: 0.0002 } }, verdict('rejected', 'Expensive nitpick: rename a.txt.')],
        },
      }),
    });
    const out = runUntilIdle(project);
    expect(out).toContain('escalated: budget_exhausted');
    const d = showTask(project, key);
    expect(d).toMatchObject({ status: 'escalated', terminal_reason: 'budget_exhausted' });
    expect(d.status_detail).toBe('cost $0.0002 reached the task budget of $0.0001');
    expect(d.totals.cost_usd).toBeCloseTo(0.0002, 6);
    expect(d.attempts).toHaveLength(1);
    expect(d.attempts[0]).toMatchObject({
      n: 1,
      verdict: 'rejected',
      reason: 'budget_exhausted',
      cost_usd: 0.0002,
    });
    expect(devRuns(d)).toHaveLength(1);

    const packet = readFileSync(packetPath(project, key), 'utf8');
    const hash = d.attempts[0]!.diff_hash.slice(0, 12);
    expect(packet).toContain(`| 1 | \`${hash}\` | rejected |`);
    expect(packet).toMatch(/\| \$0\.0002 \| [\d.]+s \| budget_exhausted \|/);
    expect(packet).toContain('Expensive nitpick: rename a.txt.');
    expect(packet).toContain('src/a.txt');
    expect(existsSync(join(project.dir, '.orch', 'artifacts', key, 'attempt_ledger.jsonl'))).toBe(true);
    await expectLoopConsistent(project, key);
  });
});
