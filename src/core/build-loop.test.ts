import { describe, expect, it } from 'vitest';
import {
  budgetExhausted,
  DEFAULT_TASK_BUDGET,
  judgeAttempt,
  TERMINAL_REASONS,
  type AttemptRecord,
  type Spend,
  type TaskBudget,
} from './build-loop.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

const attempt = (
  n: number,
  diffHash: string,
  verdict: 'approved' | 'rejected' = 'rejected',
): AttemptRecord => ({
  n,
  diffHash,
  verdict,
  feedback: `feedback of attempt ${n}`,
  inputTokens: 100,
  outputTokens: 50,
  costUsd: 0.01,
  durationMs: 1_000,
  reason: null,
});

/** Attempts 1..k with the given diff hashes; the last one is the current attempt. */
const history = (hashes: string[], lastVerdict: 'approved' | 'rejected' = 'rejected') => {
  const all = hashes.map((h, i) => attempt(i + 1, h, i === hashes.length - 1 ? lastVerdict : 'rejected'));
  return { earlier: all.slice(0, -1), current: all.at(-1)! };
};

const NO_SPEND: Spend = { tokens: 0, usd: 0, wallS: 0, projectUsdToday: 0 };
const budget = (b: Partial<TaskBudget> = {}): TaskBudget => ({ ...DEFAULT_TASK_BUDGET, ...b });

describe('judgeAttempt', () => {
  const cases: {
    name: string;
    hashes: string[];
    verdict?: 'approved' | 'rejected';
    budget?: Partial<TaskBudget>;
    spend?: Partial<Spend>;
    projectUsdPerDay?: number | null;
    /** 'approved', 'rework', or the stop reason. */
    want: string;
    detail?: RegExp;
  }[] = [
    { name: 'an approval ends the loop', hashes: [A], verdict: 'approved', want: 'approved' },
    {
      name: 'an approval wins over a repeated diff',
      hashes: [A, A],
      verdict: 'approved',
      want: 'approved',
    },
    {
      name: 'an approval wins over an exhausted budget',
      hashes: [A, B],
      verdict: 'approved',
      budget: { maxUsd: 0.01 },
      spend: { usd: 5 },
      want: 'approved',
    },
    {
      name: 'an approval on the last allowed attempt is still an approval',
      hashes: [A, B],
      verdict: 'approved',
      budget: { maxAttempts: 2 },
      want: 'approved',
    },
    { name: 'a first rejection means rework', hashes: [A], want: 'rework' },
    { name: 'a rejection with a new diff means rework', hashes: [A, B, C], want: 'rework' },
    {
      name: 'the same diff twice in a row is no progress',
      hashes: [A, A],
      want: 'no_progress',
      detail: /attempt 2 produced the same diff as attempt 1 \(aaaaaaaaaaaa\)/,
    },
    { name: 'no progress later in the loop', hashes: [A, B, B], want: 'no_progress' },
    {
      name: 'diff A, then B, then A again is oscillation',
      hashes: [A, B, A],
      want: 'oscillation_detected',
      detail: /attempt 3 returned to the diff of attempt 1/,
    },
    { name: 'oscillation to an older diff', hashes: [A, B, C, A], want: 'oscillation_detected' },
    { name: 'oscillation A-B-C-B', hashes: [A, B, C, B], want: 'oscillation_detected' },
    {
      name: 'oscillation on the last allowed attempt reports oscillation, not max_attempts',
      hashes: [A, B, A],
      budget: { maxAttempts: 3 },
      want: 'oscillation_detected',
    },
    {
      name: 'no progress on the last allowed attempt reports no_progress',
      hashes: [A, A],
      budget: { maxAttempts: 2 },
      want: 'no_progress',
    },
    {
      name: 'the last allowed attempt rejected is max_attempts',
      hashes: [A, B],
      budget: { maxAttempts: 2 },
      want: 'max_attempts',
      detail: /2 of 2 attempts used, all rejected/,
    },
    {
      name: 'the default budget allows five attempts',
      hashes: [A, B, C, 'd'.repeat(64)],
      want: 'rework',
    },
    {
      name: 'the fifth rejection under the default budget is max_attempts',
      hashes: [A, B, C, 'd'.repeat(64), 'e'.repeat(64)],
      want: 'max_attempts',
    },
    {
      name: 'tokens at the budget exhaust it',
      hashes: [A],
      budget: { maxTokens: 1_000 },
      spend: { tokens: 1_000 },
      want: 'budget_exhausted',
      detail: /tokens 1000 reached the task budget of 1000/,
    },
    {
      name: 'tokens under the budget do not',
      hashes: [A],
      budget: { maxTokens: 1_000 },
      spend: { tokens: 999 },
      want: 'rework',
    },
    {
      name: 'USD over the budget exhausts it',
      hashes: [A, B],
      budget: { maxUsd: 0.5 },
      spend: { usd: 0.75 },
      want: 'budget_exhausted',
      detail: /cost \$0\.7500 reached the task budget of \$0\.5/,
    },
    {
      name: 'wall time over the budget exhausts it',
      hashes: [A],
      budget: { maxWallS: 600 },
      spend: { wallS: 601.4 },
      want: 'budget_exhausted',
      detail: /wall time 601s reached the task budget of 600s/,
    },
    {
      name: "the project's daily spend exhausts it",
      hashes: [A],
      spend: { projectUsdToday: 10 },
      projectUsdPerDay: 10,
      want: 'budget_exhausted',
      detail: /project spend today \$10\.0000 reached the daily budget of \$10/,
    },
    {
      name: 'daily spend is ignored without a daily budget',
      hashes: [A],
      spend: { projectUsdToday: 1e6 },
      projectUsdPerDay: null,
      want: 'rework',
    },
    {
      name: 'oscillation is reported before an exhausted budget',
      hashes: [A, B, A],
      budget: { maxUsd: 0.01 },
      spend: { usd: 1 },
      want: 'oscillation_detected',
    },
  ];

  it.each(cases)('$name', (c) => {
    const { earlier, current } = history(c.hashes, c.verdict);
    const decision = judgeAttempt(
      earlier,
      current,
      budget(c.budget),
      { ...NO_SPEND, ...c.spend },
      c.projectUsdPerDay ?? null,
    );
    const got = decision.kind === 'stop' ? decision.reason : decision.kind;
    expect(got).toBe(c.want);
    if (c.detail) {
      expect(decision.kind).toBe('stop');
      expect(decision.kind === 'stop' && decision.detail).toMatch(c.detail);
    }
  });

  it('a rework carries the current attempt’s feedback', () => {
    const { earlier, current } = history([A, B]);
    expect(judgeAttempt(earlier, current, budget(), NO_SPEND, null)).toEqual({
      kind: 'rework',
      feedback: 'feedback of attempt 2',
    });
  });

  it('a review rejection never yields design_rejected, whatever the history and budget', () => {
    const hashes = [A, B, C];
    const sequences: string[][] = [[]];
    for (let len = 1; len <= 4; len += 1)
      for (const prefix of sequences.filter((s) => s.length === len - 1))
        for (const h of hashes) sequences.push([...prefix, h]);
    const budgets: Partial<TaskBudget>[] = [{}, { maxAttempts: 1 }, { maxAttempts: 3 }, { maxUsd: 0.001 }];
    const spends: Partial<Spend>[] = [{}, { usd: 1, tokens: 1e9, wallS: 1e9, projectUsdToday: 1e9 }];
    const seen = new Set<string>();
    let judged = 0;
    for (const seq of sequences.filter((s) => s.length > 0))
      for (const b of budgets)
        for (const s of spends) {
          const { earlier, current } = history(seq);
          const d = judgeAttempt(earlier, current, budget(b), { ...NO_SPEND, ...s }, 1);
          seen.add(d.kind === 'stop' ? d.reason : d.kind);
          judged += 1;
        }
    expect(judged).toBeGreaterThan(500);
    expect(seen).not.toContain('design_rejected');
    expect(seen).not.toContain('approved');
    // Every way a rejected build can stop was reached, so the check above is not vacuous.
    expect([...seen].sort()).toEqual(
      ['budget_exhausted', 'max_attempts', 'no_progress', 'oscillation_detected', 'rework'].sort(),
    );
  });

  it('every stop reason is a known terminal reason', () => {
    const { earlier, current } = history([A, B, A]);
    const d = judgeAttempt(earlier, current, budget(), NO_SPEND, null);
    expect(d.kind === 'stop' && TERMINAL_REASONS.includes(d.reason)).toBe(true);
  });
});

describe('budgetExhausted', () => {
  const unlimited = budget();
  it.each([
    {
      name: 'nothing is limited',
      b: unlimited,
      spend: { tokens: 1e9, usd: 1e6, wallS: 1e9 },
      perDay: null,
      want: null,
    },
    {
      name: 'under every limit',
      b: budget({ maxTokens: 10, maxUsd: 1, maxWallS: 10 }),
      spend: { tokens: 9, usd: 0.99, wallS: 9.9 },
      perDay: 5,
      want: null,
    },
    {
      name: 'tokens',
      b: budget({ maxTokens: 10 }),
      spend: { tokens: 10 },
      perDay: null,
      want: /^tokens 10 /,
    },
    {
      name: 'usd',
      b: budget({ maxUsd: 0.0001 }),
      spend: { usd: 0.0002 },
      perDay: null,
      want: /^cost \$0\.0002 /,
    },
    {
      name: 'wall time',
      b: budget({ maxWallS: 1 }),
      spend: { wallS: 1 },
      perDay: null,
      want: /^wall time 1s /,
    },
    {
      name: 'project per day',
      b: unlimited,
      spend: { projectUsdToday: 3 },
      perDay: 2,
      want: /^project spend today \$3\.0000 /,
    },
    {
      name: 'tokens are named first when several are exhausted',
      b: budget({ maxTokens: 1, maxUsd: 1 }),
      spend: { tokens: 5, usd: 5 },
      perDay: null,
      want: /^tokens/,
    },
  ])('$name', ({ b, spend, perDay, want }) => {
    const got = budgetExhausted(b, { ...NO_SPEND, ...spend }, perDay);
    if (want === null) expect(got).toBeNull();
    else expect(got).toMatch(want);
  });
});
