/**
 * The agent's environment: an allowlist of the parent's variables, the
 * command contract's `ORCH_*` variables, the role's own `env` and the names
 * in its `pass_env` (never `ORCH_*`). Nothing else of orch's environment
 * (tokens, database URLs) reaches an agent. This stops leaks by accident; an
 * agent running as orch's user could still read orch's /proc environ, which
 * only the sandbox (runtime/sandbox.ts) stops. docs/security.md#secrets.
 */
const ALLOWED = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TERM',
  'TMPDIR',
  'TZ',
  'USER',
  'LOGNAME',
  'SHELL',
];

export interface ContractEnv {
  ORCH_TASK_KEY: string;
  ORCH_TASK_TITLE: string;
  ORCH_STAGE: string;
  ORCH_ROLE: string;
  ORCH_ATTEMPT: string;
  ORCH_WORKTREE: string;
  ORCH_PROMPT_FILE: string;
  ORCH_MODEL: string;
  ORCH_EFFORT: string;
  ORCH_RUN_ID: string;
}

export function agentEnv(
  parent: Readonly<Record<string, string | undefined>>,
  contract: ContractEnv,
  extra: Readonly<Record<string, string>>,
  passThrough: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...ALLOWED, ...passThrough.filter((n) => !n.startsWith('ORCH_'))]) {
    const v = parent[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...extra, ...contract };
}

/** The contract variables of a run; what does not apply (a gate has no prompt) is empty. */
export function contractEnv(
  task: { key: string; title: string; attempt: number },
  stage: string,
  role: string,
  worktree: string,
  run: Partial<
    Pick<ContractEnv, 'ORCH_ATTEMPT' | 'ORCH_PROMPT_FILE' | 'ORCH_MODEL' | 'ORCH_EFFORT' | 'ORCH_RUN_ID'>
  > = {},
): ContractEnv {
  return {
    ORCH_TASK_KEY: task.key,
    ORCH_TASK_TITLE: task.title,
    ORCH_STAGE: stage,
    ORCH_ROLE: role,
    ORCH_ATTEMPT: String(Math.max(1, task.attempt)),
    ORCH_WORKTREE: worktree,
    ORCH_PROMPT_FILE: '',
    ORCH_MODEL: '',
    ORCH_EFFORT: '',
    ORCH_RUN_ID: '',
    ...run,
  };
}
