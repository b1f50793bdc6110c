/**
 * `codex exec --json` argv: model with `--model`, effort as
 * `model_reasoning_effort` (max becomes xhigh, the Responses API's highest),
 * permission mode as sandbox flags, `system_prompt_append` as
 * `developer_instructions`, resume as the `resume <thread id>` subcommand.
 * Codex has no turn limit and no allowed-tools flag.
 */
import type { AgentConfig } from '../../config/project-config.ts';
import { passThrough, type LaunchVars, type PermissionMode } from '../adapter.ts';

const REASONING_EFFORT: Readonly<Record<string, string>> = {
  low: 'low',
  medium: 'medium',
  high: 'high',
  xhigh: 'xhigh',
  max: 'xhigh',
};

const PERMISSION_FLAGS: Readonly<Record<PermissionMode, readonly string[]>> = {
  bypass: ['--dangerously-bypass-approvals-and-sandbox'],
  edits: ['--sandbox', 'workspace-write'],
  read_only: ['--sandbox', 'read-only'],
};

/** A `-c key=value` override whose value is a TOML string (JSON string escapes are valid TOML). */
const tomlString = (key: string, value: string): string => `${key}=${JSON.stringify(value)}`;

export function codexArgv(cfg: AgentConfig, vars: LaunchVars): string[] {
  const effort = REASONING_EFFORT[vars.effort] ?? 'high';
  return [
    vars.binary,
    'exec',
    '--json',
    `--model=${vars.model}`,
    '-c',
    tomlString('model_reasoning_effort', effort),
    ...PERMISSION_FLAGS[cfg.permission_mode ?? 'bypass'],
    ...(cfg.system_prompt_append
      ? ['-c', tomlString('developer_instructions', cfg.system_prompt_append)]
      : []),
    ...(cfg.args ?? []),
    ...(vars.resumeSessionId ? ['resume', vars.resumeSessionId] : []),
    '--',
    vars.prompt,
  ];
}

/** Codex keeps its config, logins and sessions in CODEX_HOME (default ~/.codex): passed through when set. */
export function codexEnv(_cfg: AgentConfig, vars: LaunchVars): Record<string, string> {
  return passThrough(vars.parentEnv, ['CODEX_HOME']);
}
