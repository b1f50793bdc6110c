/**
 * The build loop's decisions (development then review, repeated): budgets,
 * oscillation and no-progress detection. Pure functions of the recorded
 * attempts, the budget and the current usage.
 */

export const TERMINAL_REASONS = [
  'oscillation_detected',
  'budget_exhausted',
  'no_progress',
  'design_rejected',
  'max_attempts',
  'agent_failure',
  'gate_failure',
  'internal_error',
  'runs_interrupted',
  'cancelled',
] as const;
export type TerminalReason = (typeof TERMINAL_REASONS)[number];

/** One recorded pass of the loop, as the ledger and the database hold it. */
export interface AttemptRecord {
  n: number;
  diffHash: string;
  verdict: 'approved' | 'rejected';
  feedback: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number | null;
  durationMs: number;
  reason: string | null;
}

/** Per-task limits; null means unlimited. */
export interface TaskBudget {
  /** Attempts (development + review passes). Default 5. */
  maxAttempts: number;
  maxTokens: number | null;
  maxUsd: number | null;
  maxWallS: number | null;
}

export const DEFAULT_TASK_BUDGET: TaskBudget = {
  maxAttempts: 5,
  maxTokens: null,
  maxUsd: null,
  maxWallS: null,
};

/** What a task has spent so far, plus its project's spend today. */
export interface Spend {
  tokens: number;
  usd: number;
  wallS: number;
  projectUsdToday: number;
}

/** Checks every budget; returns the exhausted one as text, or null. */
export function budgetExhausted(
  budget: TaskBudget,
  spend: Spend,
  projectUsdPerDay: number | null,
): string | null {
  if (budget.maxTokens !== null && spend.tokens >= budget.maxTokens)
    return `tokens ${spend.tokens} reached the task budget of ${budget.maxTokens}`;
  if (budget.maxUsd !== null && spend.usd >= budget.maxUsd)
    return `cost $${spend.usd.toFixed(4)} reached the task budget of $${budget.maxUsd}`;
  if (budget.maxWallS !== null && spend.wallS >= budget.maxWallS)
    return `wall time ${Math.round(spend.wallS)}s reached the task budget of ${budget.maxWallS}s`;
  if (projectUsdPerDay !== null && spend.projectUsdToday >= projectUsdPerDay)
    return `project spend today $${spend.projectUsdToday.toFixed(4)} reached the daily budget of $${projectUsdPerDay}`;
  return null;
}

export type LoopDecision =
  | { kind: 'approved' }
  | { kind: 'rework'; feedback: string }
  | { kind: 'stop'; reason: TerminalReason; detail: string };

/**
 * After attempt `current` was recorded (its review done): go on, rework, or stop.
 * `earlier` are the attempts before it, oldest first.
 */
export function judgeAttempt(
  earlier: readonly AttemptRecord[],
  current: AttemptRecord,
  budget: TaskBudget,
  spend: Spend,
  projectUsdPerDay: number | null,
  /** false for a pass judged by a gate after an approval: the same diff is expected then, not a lack of progress. */
  checkRepetition = true,
): LoopDecision {
  if (current.verdict === 'approved') return { kind: 'approved' };
  const previous = checkRepetition ? earlier.at(-1) : undefined;
  if (previous && previous.diffHash === current.diffHash) {
    return {
      kind: 'stop',
      reason: 'no_progress',
      detail: `attempt ${current.n} produced the same diff as attempt ${previous.n} (${short(current.diffHash)})`,
    };
  }
  const echo = checkRepetition
    ? earlier.slice(0, -1).find((a) => a.diffHash === current.diffHash)
    : undefined;
  if (echo) {
    return {
      kind: 'stop',
      reason: 'oscillation_detected',
      detail: `attempt ${current.n} returned to the diff of attempt ${echo.n} (${short(current.diffHash)}) after trying another`,
    };
  }
  if (current.n >= budget.maxAttempts) {
    return {
      kind: 'stop',
      reason: 'max_attempts',
      detail: `${current.n} of ${budget.maxAttempts} attempts used, all rejected`,
    };
  }
  const exhausted = budgetExhausted(budget, spend, projectUsdPerDay);
  if (exhausted) return { kind: 'stop', reason: 'budget_exhausted', detail: exhausted };
  return { kind: 'rework', feedback: current.feedback };
}

const short = (hash: string): string => hash.slice(0, 12);
