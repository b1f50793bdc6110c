/**
 * The one event stream every agent adapter normalizes to.
 *
 * Glossary: an adapter reads an agent CLI's stdout line by line and turns each
 * line into zero or more {@link AgentEvent}s; the launcher records usage from
 * `usage`/`result` events and treats a `result` as the agent's final answer.
 */

/** Tokens by kind. Input excludes cached input, which is counted as cache reads. */
export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/** Token and cost figures reported by an agent; null means "not reported". */
export interface Usage extends TokenCounts {
  /** USD; null when the agent reported none and no price is known (never 0 by default). */
  costUsd: number | null;
  model: string | null;
  sessionId: string | null;
  numTurns: number | null;
  /** The same tokens per model, when the CLI breaks them down (side models for titles or routing). */
  byModel?: Record<string, TokenCounts>;
}

export type AgentEvent =
  | { type: 'started'; sessionId: string | null; model: string | null }
  | { type: 'message'; text: string }
  | { type: 'tool_use'; name: string; input: unknown }
  | { type: 'tool_result'; isError: boolean; text: string }
  | { type: 'usage'; usage: Usage }
  | { type: 'retry'; attempt: number | null; delayMs: number | null; error: string | null }
  /** The agent's final answer. `ok` is false for error results (e.g. max turns). */
  | { type: 'result'; ok: boolean; text: string; subtype: string | null; usage: Usage | null }
  /**
   * The provider refused work until a reset (a subscription's window, a rate limit the CLI gave up
   * on): the run is `usage_limited`, not failed. `resetAt` is epoch ms, null when not said.
   */
  | { type: 'usage_limit'; resetAt: number | null; window: string | null; message: string }
  /** A line that could not be understood, kept raw; or an error the agent reported. */
  | { type: 'error'; message: string; raw: string | null };

export const emptyUsage = (): Usage => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: null,
  model: null,
  sessionId: null,
  numTurns: null,
});

/** Parses one stdout line of an agent into events. Never throws. */
export type LineParser = (line: string) => AgentEvent[];
