/**
 * Anti-salvage: how a finished agent process is judged. Only a clean exit
 * (code 0) with the agent's final, successful result can advance a stage;
 * everything else goes to the retry/fail path.
 */
export interface ProcessFacts {
  exitCode: number | null;
  timedOut: boolean;
  stalled: boolean;
  canceled: boolean;
  endedAfterResult: boolean;
  spawnError: string | null;
  /** A final result event was read. */
  hasResult: boolean;
  /** That result reported success. */
  resultOk: boolean;
}

export type RunOutcome =
  | 'ok'
  | 'error_result'
  | 'no_result'
  | 'failed'
  | 'killed'
  | 'timeout'
  | 'stalled'
  | 'cancelled'
  | 'spawn_error'
  | 'interrupted'
  | 'reaped'
  /** Stopped by orch when its cost crossed the task's remaining budget. */
  | 'over_budget'
  /** The provider refused work until a reset (a usage or rate limit): not a failed try. */
  | 'usage_limited'
  /** Stopped by a person's message (`orch task say --now`): not a try; the stage runs again with it. */
  | 'redirected';

export function classifyRun(f: ProcessFacts): RunOutcome {
  if (f.spawnError) return 'spawn_error';
  if (f.canceled) return 'cancelled';
  // An agent that printed its result then hung was ended by orch: its work is finished.
  if (f.endedAfterResult && f.hasResult) return f.resultOk ? 'ok' : 'error_result';
  if (f.timedOut) return 'timeout';
  if (f.stalled) return 'stalled';
  if (f.exitCode === null || f.exitCode < 0) return 'killed';
  if (f.exitCode !== 0) return 'failed';
  if (!f.hasResult) return 'no_result';
  return f.resultOk ? 'ok' : 'error_result';
}

/** The one gate on advancing: nothing but `ok` moves a task forward. */
export const mayAdvance = (outcome: RunOutcome): boolean => outcome === 'ok';
