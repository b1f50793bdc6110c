/**
 * orch's few named errors. Expected outcomes (a failed run, a rejected gate)
 * are values, not errors; these are for things a user must fix.
 */
export type ErrorCode =
  | 'config_invalid'
  | 'not_a_git_repo'
  | 'not_initialized'
  | 'unknown_task'
  | 'unknown_project'
  | 'ambiguous_project'
  | 'agent_not_found'
  | 'invalid_argument'
  | 'invalid_state'
  | 'db_open_failed'
  | 'db_migration_failed'
  | 'git_failed'
  /** The worktree holds what cannot be committed (runtime/git-refusal.ts): the stage's failure, not orch's. */
  | 'git_refused';

export class OrchError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown>;
  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrchError';
    this.code = code;
    this.context = options.context ?? {};
  }
}

/** Exit codes: 2 for invalid configuration (and usage), 1 for everything else. */
export const exitCodeFor = (error: unknown): number =>
  error instanceof OrchError && (error.code === 'config_invalid' || error.code === 'invalid_argument')
    ? 2
    : 1;
