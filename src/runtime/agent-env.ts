/**
 * The agent's environment: an allowlist of the parent's variables, the
 * command contract's `ORCH_*` variables and the role's own `env`. Nothing
 * else of orch's environment (tokens, database URLs) reaches an agent.
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
