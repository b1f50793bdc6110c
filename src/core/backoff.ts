/** Retry policy for failed runs: exponential backoff, written in one place. */
export interface RetryPolicy {
  /** Retries after the first failure before the task escalates. Default 3. */
  maxRetries: number;
  /** First delay in ms. Default 10 000. */
  baseMs: number;
  /** Ceiling in ms. Default 300 000 (5 min). */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 3, baseMs: 10_000, maxMs: 300_000 };

/** Delay before retry number `retry` (1-based): base, 2×base, 4×base… capped. */
export const backoffMs = (policy: RetryPolicy, retry: number): number =>
  Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
