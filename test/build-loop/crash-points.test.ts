/**
 * A real `orch run` SIGKILLed at several points of the build loop, then
 * restarted with `orch run --until-idle`: the loop must resume where the
 * database says it stopped, with the ledger file agreeing with the database,
 * attempts numbered 1..n without gap or repeat, no run left running and no
 * agent process left alive.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DEVELOP_AND_REVIEW } from '../helpers/kit.ts';
import {
  cleanupAll,
  expectLoopConsistent,
  killWhen,
  ledgerLines,
  ledgerPath,
  projectWithTask,
  rewriteScript,
  runningRunOf,
  runUntilIdle,
  showTask,
  sleep,
  startOrch,
  taskScript,
  verdict,
  write,
  type LoopState,
} from './loop-kit.ts';

afterEach(cleanupAll);

type SlowRun = { role: 'developer' | 'reviewer'; attempt: number };

/** Three attempts: rejected, rejected, approved; one run may start with a long sleep to be killed in. */
function script(slow: SlowRun | null): Record<string, unknown> {
  const pause = (role: string, n: number) =>
    slow && slow.role === role && slow.attempt === n ? [sleep(20_000)] : [];
  return taskScript('crash', {
    developer: {
      attempts: Object.fromEntries(
        [1, 2, 3].map((n) => [n, [...pause('developer', n), write('src/impl.txt', `version ${n}\n`)]]),
      ),
    },
    reviewer: {
      attempts: {
        1: [...pause('reviewer', 1), verdict('rejected', 'Version 1 is wrong.')],
        2: [...pause('reviewer', 2), verdict('rejected', 'Version 2 is still wrong.')],
        3: [...pause('reviewer', 3), verdict('approved', 'Version 3 is right.')],
      },
    },
  });
}

/** Cuts the ledger's last line in half, as a crash in the middle of an append would. */
function tearLedger(path: string): void {
  const text = readFileSync(path, 'utf8');
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const lastStart = body.lastIndexOf('\n') + 1;
  writeFileSync(path, body.slice(0, lastStart + Math.floor((body.length - lastStart) / 2)));
}

interface CrashPoint {
  name: string;
  slow: SlowRun | null;
  /** Kill orch as soon as this holds. */
  when: (s: LoopState) => boolean;
  /** The run killed with orch, which the restart must finalize as interrupted. */
  interrupted?: SlowRun;
  tear?: boolean;
  /** orch.yaml additions. */
  config?: Record<string, unknown>;
}

const crashPoints: CrashPoint[] = [
  {
    name: 'during the first development run, before any attempt is recorded',
    slow: { role: 'developer', attempt: 1 },
    when: (s) => runningRunOf(s, 'developer', 1) !== undefined,
    interrupted: { role: 'developer', attempt: 1 },
  },
  {
    name: 'during a development run',
    slow: { role: 'developer', attempt: 2 },
    when: (s) => s.attempts.length === 1 && runningRunOf(s, 'developer', 2) !== undefined,
    interrupted: { role: 'developer', attempt: 2 },
  },
  {
    name: 'during a review run',
    slow: { role: 'reviewer', attempt: 2 },
    when: (s) => s.attempts.length === 1 && runningRunOf(s, 'reviewer', 2) !== undefined,
    interrupted: { role: 'reviewer', attempt: 2 },
  },
  {
    name: 'just after a verdict is recorded',
    slow: null,
    when: (s) => s.attempts.length === 1,
  },
  {
    // The approval is recorded before the review stage's other gates run; a slow gate holds that window open.
    name: 'just after the approving verdict is recorded, while the review gates run',
    slow: null,
    config: {
      pipeline: {
        review: { gates: ['check_reviewer_verdict', { name: 'slow-check', command: ['sleep', '2'] }] },
      },
    },
    when: (s) => s.attempts.length === 3,
  },
  {
    name: 'during the ledger write (the last line torn)',
    slow: null,
    when: (s) => s.attempts.length === 2,
    tear: true,
  },
];

describe('SIGKILL of orch in the build loop, then restart', () => {
  it.each(crashPoints)('$name', async (point) => {
    const { project, key } = projectWithTask('crash test', {
      script: script(point.slow),
      // The loop under test is development and review: the other stages would only add runs.
      config: {
        ...point.config,
        pipeline: { ...DEVELOP_AND_REVIEW, ...(point.config?.pipeline as Record<string, unknown>) },
      },
    });
    const orch = startOrch(project);
    const atKill = await killWhen(project, key, orch, point.name, point.when, { pollMs: 5 });
    const killedRun = point.interrupted
      ? runningRunOf(atKill, point.interrupted.role, point.interrupted.attempt)
      : undefined;

    let before = ledgerLines(project, key);
    if (point.tear) {
      tearLedger(ledgerPath(project, key));
      expect(readFileSync(ledgerPath(project, key), 'utf8').endsWith('\n')).toBe(false);
      before = [];
    }

    rewriteScript(project, script(null));
    runUntilIdle(project);

    const d = showTask(project, key);
    expect(d.status, d.status_detail ?? '').toBe('done');
    expect(d.attempts.map((a) => [a.n, a.verdict])).toEqual([
      [1, 'rejected'],
      [2, 'rejected'],
      [3, 'approved'],
    ]);
    // Attempts recorded before the crash are kept as they were.
    expect(d.attempts.slice(0, atKill.attempts.length).map((a) => a.created_at)).toEqual(
      atKill.attempts.map((a) => a.created_at),
    );
    if (killedRun) {
      expect(d.runs.find((r) => r.id === killedRun.id)).toMatchObject({
        status: 'finished',
        outcome: 'interrupted',
        exit_code: -9,
      });
    }
    // A ledger that was whole before the crash is only ever appended to.
    const after = ledgerLines(project, key);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(4);
    await expectLoopConsistent(project, key);
  });
});
